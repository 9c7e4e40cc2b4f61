/* dvmstream — strict UTF-8 validation (RFC 3629).
 *
 * Every string on the DVM wire must be valid UTF-8
 * (seeds/streaming-guide-p2p-cashu.md, "Wire Protocol": JSON over the
 * stream; RFC 8259 section 8.1). "Valid" here is RFC 3629 exactly: no
 * overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. NUL bytes are valid (JSON carries them as \u0000). */
#ifndef DVM_WIRE_UTF8_H
#define DVM_WIRE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..len) is valid UTF-8 as above. s may be NULL when len == 0.
 * Pure, O(len), reads nothing past s+len. */
bool dvm_utf8_valid(const uint8_t *s, size_t len);

/* Length in bytes (1..4) of the valid UTF-8 sequence starting at s, reading
 * at most `avail` bytes; 0 when the bytes there are not a complete valid
 * sequence (truncated, overlong, surrogate, > U+10FFFF, stray continuation
 * byte). avail == 0 gives 0. */
size_t dvm_utf8_seq_len(const uint8_t *s, size_t avail);

#endif

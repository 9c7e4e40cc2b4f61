/* dvmstream — hexadecimal, the one implementation core/ uses (keyset ids,
 * points and scalars in Cashu JSON, \uXXXX escapes in the wire codec). */
#ifndef DVM_COMMON_HEX_H
#define DVM_COMMON_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value 0..15 of one hex digit (either case), or -1 if c is not one. */
int dvm_hex_digit(unsigned char c);

/* Write in[0..n) as 2n lowercase hex digits plus a NUL into out (2n+1
 * bytes). */
void dvm_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly 2n hex digits hex[0..hex_len) (either case; no NUL needed)
 * into out[0..n). false (out partly written) when hex_len != 2n or a
 * character is not a hex digit. */
bool dvm_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t n);

#endif

/* dvmstream — writing untrusted text (a provider's or a model's output) to
 * the user's terminal. */
#ifndef DVM_LIVE_TERM_H
#define DVM_LIVE_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Write s[0..n) to `out`. With `neutralise` (set it when `out` is a
 * terminal: isatty(fileno(out))), every control character other than
 * newline and tab — C0 (U+0000..U+001F), DEL (U+007F) and C1
 * (U+0080..U+009F, bytes C2 80..C2 9F) — is written as U+FFFD, so the text
 * cannot move the cursor, clear the screen, retitle the window or set the
 * clipboard (OSC 52) through escape sequences. Without it the bytes are
 * written unchanged (pipes and files get the exact text). A C1 character
 * split across two calls is not recognised: pass whole code points. Write
 * errors are left to the stream's error flag (ferror). */
void dvm_term_write(FILE *out, const char *s, size_t n, bool neutralise);

#endif

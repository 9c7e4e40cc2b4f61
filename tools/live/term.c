/* dvmstream — untrusted text to a terminal (see term.h). */
#include "live/term.h"

void dvm_term_write(FILE *out, const char *s, size_t n, bool neutralise)
{
    if (!neutralise) {
        fwrite(s, 1, n, out);
        return;
    }
    static const char repl[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        size_t bad = 0;
        if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f)
            bad = 1;
        else if (b == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
            bad = 2;
        if (!bad)
            continue;
        fwrite(s + from, 1, i - from, out);
        fwrite(repl, 1, sizeof repl, out);
        i += bad - 1;
        from = i + 1;
    }
    fwrite(s + from, 1, n - from, out);
}

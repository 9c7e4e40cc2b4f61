/* dvm_term_write (tools/live/term.h): untrusted text on a terminal. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "live/term.h"

static char *written(const char *s, size_t n, bool neutralise, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    cr_assert_not_null(f);
    dvm_term_write(f, s, n, neutralise);
    fclose(f);
    return buf;
}

#define FFFD "\xef\xbf\xbd"

Test(term, control_characters_become_replacement_characters)
{
    /* ESC sequences (OSC 52 clipboard write ended by BEL, clear screen),
     * CR, NUL, DEL and the C1 CSI (U+009B) are replaced; newline, tab,
     * printable ASCII and other UTF-8 (é, U+00A0 whose lead byte is also
     * C2, an emoji) are kept. */
    static const char in[] = "a\x1b]52;c;aGk=\x07" "b\x1b[2Jc\r\n\td\x00" "e\x7f" "f\xc2\x9bg\xc3\xa9\xc2\xa0\xf0\x9f\x99\x82";
    size_t n;
    char *out = written(in, sizeof in - 1, true, &n);
    static const char want[] = "a" FFFD "]52;c;aGk=" FFFD "b" FFFD "[2Jc" FFFD "\n\td" FFFD "e" FFFD "f" FFFD
                               "g\xc3\xa9\xc2\xa0\xf0\x9f\x99\x82";
    cr_assert_eq(n, sizeof want - 1, "%zu bytes: %s", n, out);
    cr_assert_eq(memcmp(out, want, n), 0, "%s", out);
    free(out);
}

Test(term, without_neutralise_the_bytes_are_exact)
{
    static const char in[] = "a\x1b[2J\x00\xc2\x9b\n";
    size_t n;
    char *out = written(in, sizeof in - 1, false, &n);
    cr_assert_eq(n, sizeof in - 1);
    cr_assert_eq(memcmp(out, in, n), 0);
    free(out);
}

Test(term, edges)
{
    size_t n;
    char *out = written("", 0, true, &n);
    cr_assert_eq(n, 0);
    free(out);
    out = written("\xc2", 1, true, &n); /* a lone lead byte at the end is not C1 */
    cr_assert_eq(n, 1);
    cr_assert_eq((unsigned char)out[0], 0xc2);
    free(out);
    out = written("\x1b\x1b", 2, true, &n);
    cr_assert_eq(n, 6);
    cr_assert_eq(memcmp(out, FFFD FFFD, 6), 0);
    free(out);
}

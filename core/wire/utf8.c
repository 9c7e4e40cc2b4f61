#include "wire/utf8.h"

#include <string.h>

#include "wire/jscan.h"

size_t dvm_utf8_seq_len(const uint8_t *s, size_t avail)
{
    return dvm_jscan_utf8_seq(s, avail);
}

/* Index of the first byte >= 0x80 in s[i..len), or len. */
static size_t ascii_run(const uint8_t *s, size_t i, size_t len)
{
#if defined(DVM_JSCAN_SSE2)
    for (; len - i >= 16; i += 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & DVM_JSCAN_HIGHS)
            break;
    }
    while (i < len && s[i] < 0x80)
        i++;
    return i;
}

bool dvm_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        i = ascii_run(s, i, len);
        if (i >= len)
            break;
        size_t n = dvm_jscan_utf8_seq(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

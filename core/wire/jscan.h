/* dvmstream — internal: fast scanning of JSON string bytes (core only:
 * the wire module, and the sessions' fused chunk paths through
 * wire/chunk_fast.h; not a public API).
 *
 * The chunk hot path looks at every byte of a chunk in the encoder (UTF-8
 * check, escape count, copy) and in the decoder (find the closing quote,
 * UTF-8 check). Nearly all bytes are "plain": printable ASCII other than
 * '"' and '\\' — JSON.stringify copies them unchanged (ECMA-262
 * QuoteJSONString), RFC 8259 allows them raw in a string, and they are
 * valid UTF-8 by themselves. dvm_jscan_plain() finds the first byte that is
 * not plain, 16 bytes at a time with SSE2 (always present on x86-64) or 8
 * at a time with 64-bit word tricks elsewhere; callers handle that one byte
 * (an escape, a quote, a control byte or a multi-byte UTF-8 sequence) and
 * call again. Reads only p[0..n). dvm_jscan_all_plain (every byte plain?)
 * and dvm_jscan_eq (bytes equal?) OR the blocks together and test once,
 * for spans that nearly always pass (a chunk line's data, head and tail).
 * Defining DVM_JSCAN_PORTABLE before the first include selects the 8-byte
 * word versions on x86-64 too (tests compile both). */
#ifndef DVM_WIRE_JSCAN_H
#define DVM_WIRE_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) && !defined(DVM_JSCAN_PORTABLE)
#include <emmintrin.h>
#define DVM_JSCAN_SSE2 1
#endif

/* A byte JSON.stringify writes unchanged and that is a whole UTF-8
 * sequence: 0x20..0x7f except '"' (0x22) and '\\' (0x5c). */
static inline int dvm_jscan_is_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define DVM_JSCAN_ONES 0x0101010101010101ULL
#define DVM_JSCAN_HIGHS 0x8080808080808080ULL

/* High bit set in the byte lanes of w that are not plain. The lowest set
 * lane is exact (a borrow only travels upward, from a lane that is itself
 * flagged), so the count of trailing zero bits / 8 is the index of the
 * first non-plain byte in memory order on a little-endian machine; on a
 * big-endian one only "zero / nonzero" is used. */
static inline uint64_t dvm_jscan_bad8(uint64_t w)
{
    const uint64_t ones = DVM_JSCAN_ONES, highs = DVM_JSCAN_HIGHS;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (w & highs) | ((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs) |
           ((b - ones) & ~b & highs);
}

/* Byte-at-a-time form of the plain-byte scan: the offset of the first byte
 * of p[i..n) that is not plain (a control byte, '"', '\\' or a byte >= 0x80),
 * or n when all are. Offsets are bytes; p is read, not kept. The tail and
 * fallback of the word-at-a-time scans. */
static inline size_t dvm_jscan_plain_scalar(const uint8_t *p, size_t i, size_t n)
{
    while (i < n && dvm_jscan_is_plain(p[i]))
        i++;
    return i;
}

#if defined(DVM_JSCAN_SSE2)
/* Bit k set when byte k of v is not plain. A signed compare against 0x20
 * catches both the control bytes and every byte >= 0x80. */
static inline unsigned dvm_jscan_bad16v(__m128i v)
{
    const __m128i ctl = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    const __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    const __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, bs)));
}

/* The same for the 16 bytes at p. */
static inline unsigned dvm_jscan_bad16(const uint8_t *p)
{
    return dvm_jscan_bad16v(_mm_loadu_si128((const __m128i *)(const void *)p));
}
#endif

/* Copy n bytes, n < 16, without a library call (short string tails). */
static inline void dvm_jscan_copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* Length (1..4) of the valid UTF-8 sequence (RFC 3629: no overlong form,
 * no surrogate, nothing above U+10FFFF) at s, reading at most `avail`
 * bytes; 0 when there is none (avail == 0 included). The definition behind
 * dvm_utf8_seq_len, inline for the scanners. */
static inline size_t dvm_jscan_utf8_seq(const uint8_t *s, size_t avail)
{
    if (avail == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2) /* continuation byte or overlong 2-byte lead */
        return 0;
    if (c < 0xE0) {
        if (avail < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0) /* overlong */
            return 0;
        if (c == 0xED && s[1] >= 0xA0) /* surrogate U+D800..U+DFFF */
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xF4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

#if defined(__GNUC__)
#define DVM_JSCAN_INLINE static inline __attribute__((always_inline))
#define DVM_JSCAN_NOINLINE static __attribute__((noinline, unused))
#else
#define DVM_JSCAN_INLINE static inline
#define DVM_JSCAN_NOINLINE static
#endif

/* dvm_jscan_plain for any n, 8 bytes at a time (the SSE2-less path, and
 * short or leftover pieces). Kept out of line so the 16-byte hot path does
 * not carry its constants and registers. */
DVM_JSCAN_NOINLINE size_t dvm_jscan_plain_words(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 8) {
        for (; n - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            uint64_t m = dvm_jscan_bad8(w);
            if (m)
                return i + (size_t)(__builtin_ctzll(m) >> 3);
        }
        if (i < n) { /* last 8 bytes again; lanes already seen are plain
                        and plain lanes never borrow into the next one */
            size_t s = n - 8;
            uint64_t w;
            memcpy(&w, p + s, 8);
            uint64_t m = dvm_jscan_bad8(w) >> (8 * (i - s));
            if (m)
                return i + (size_t)(__builtin_ctzll(m) >> 3);
        }
        return n;
    }
#else
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (dvm_jscan_bad8(w))
            break;
    }
#endif
    return dvm_jscan_plain_scalar(p, i, n);
}

/* Index of the first byte of p[0..n) that is not plain, or n when all
 * are. p may be NULL when n == 0. */
DVM_JSCAN_INLINE size_t dvm_jscan_plain(const uint8_t *p, size_t n)
{
#if defined(DVM_JSCAN_SSE2)
    if (n >= 16) {
        size_t i = 0;
        for (; n - i >= 16; i += 16) {
            unsigned m = dvm_jscan_bad16(p + i);
            if (m)
                return i + (size_t)__builtin_ctz(m);
        }
        if (i < n) { /* the last 16 bytes again; the ones seen are plain */
            size_t s = n - 16;
            unsigned m = dvm_jscan_bad16(p + s) >> (i - s);
            if (m)
                return i + (size_t)__builtin_ctz(m);
        }
        return n;
    }
#endif
    return dvm_jscan_plain_words(p, n);
}

/* True when every byte of p[0..n) is plain (dvm_jscan_is_plain): the same
 * answer as dvm_jscan_plain(p, n) == n, but the blocks are OR-ed together
 * and tested once (no early exit), for spans that are nearly always
 * plain. p may be NULL when n == 0. Reads only p[0..n). */
DVM_JSCAN_INLINE int dvm_jscan_all_plain(const uint8_t *p, size_t n)
{
#if defined(DVM_JSCAN_SSE2)
    if (n >= 16) {
        const __m128i lim = _mm_set1_epi8(0x20), q = _mm_set1_epi8('"'),
                      bs = _mm_set1_epi8('\\');
        __m128i acc = _mm_setzero_si128();
        size_t i = 0;
        for (; n - i > 16; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            acc = _mm_or_si128(acc, _mm_or_si128(_mm_cmplt_epi8(v, lim),
                                                 _mm_or_si128(_mm_cmpeq_epi8(v, q),
                                                              _mm_cmpeq_epi8(v, bs))));
        }
        /* the last 16 bytes (overlapping bytes already seen) */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
        acc = _mm_or_si128(acc, _mm_or_si128(_mm_cmplt_epi8(v, lim),
                                             _mm_or_si128(_mm_cmpeq_epi8(v, q),
                                                          _mm_cmpeq_epi8(v, bs))));
        return _mm_movemask_epi8(acc) == 0;
    }
#endif
    if (n >= 8) {
        uint64_t acc = 0, w;
        size_t i = 0;
        for (; n - i > 8; i += 8) {
            memcpy(&w, p + i, 8);
            acc |= dvm_jscan_bad8(w);
        }
        memcpy(&w, p + n - 8, 8); /* the last 8 (overlapping) */
        return (acc | dvm_jscan_bad8(w)) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!dvm_jscan_is_plain(p[i]))
            return 0;
    return 1;
}

/* True when a[0..n) and b[0..n) are equal: memcmp(a, b, n) == 0 without
 * the library call, 16 (or 8) bytes per step, for short keys (a chunk
 * line's head and tail). a and b may be NULL when n == 0. */
DVM_JSCAN_INLINE int dvm_jscan_eq(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
#if defined(DVM_JSCAN_SSE2)
    if (n >= 16) {
        __m128i acc = _mm_setzero_si128();
        size_t i = 0;
        for (; n - i > 16; i += 16)
            acc = _mm_or_si128(acc, _mm_xor_si128(
                                        _mm_loadu_si128((const __m128i *)(const void *)(x + i)),
                                        _mm_loadu_si128((const __m128i *)(const void *)(y + i))));
        acc = _mm_or_si128(acc, _mm_xor_si128(
                                    _mm_loadu_si128((const __m128i *)(const void *)(x + n - 16)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(y + n - 16))));
        return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) == 0xFFFF;
    }
#endif
    if (n >= 8) {
        uint64_t acc = 0, u, v;
        size_t i = 0;
        for (; n - i > 8; i += 8) {
            memcpy(&u, x + i, 8);
            memcpy(&v, y + i, 8);
            acc |= u ^ v;
        }
        memcpy(&u, x + n - 8, 8);
        memcpy(&v, y + n - 8, 8);
        return (acc | (u ^ v)) == 0;
    }
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned)(x[i] ^ y[i]);
    return acc == 0;
}

#endif

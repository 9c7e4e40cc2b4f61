/* dvmstream — internal: the chunk line fast paths, inline (core only;
 * not a public API).
 *
 * The string writer of the codec's chunk encoder and the two per-chunk
 * fast paths of the sessions' fused calls, as static inline functions so
 * that wire/codec.c (dvm_msg_encode_chunk_with_tail,
 * dvm_msg_decode_chunk_line and the other chunk encoders) and the session
 * hot paths (session/provider.c dvm_provider_on_chunk_encode,
 * session/customer.c dvm_customer_handle_line) compile the very same code,
 * the latter without a call per chunk. Byte rules: wire/codec.h (the
 * encoder's output is JSON.stringify's), wire/jscan.h (plain bytes,
 * RFC 3629 sequences). */
#ifndef DVM_WIRE_CHUNK_FAST_H
#define DVM_WIRE_CHUNK_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "wire/codec.h"
#include "wire/jscan.h"

static const char dvm_cf_hex[] = "0123456789abcdef";

/* Escape of an ASCII byte that is not plain, as JSON.stringify writes it:
 * \" \\ \b \f \n \r \t, other control bytes \u00xx (lowercase hex). */
static inline uint8_t *dvm_cf_put_escape(uint8_t *d, uint8_t c)
{
    *d++ = '\\';
    switch (c) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    case '\n': *d++ = 'n'; break;
    case '\r': *d++ = 'r'; break;
    case '\t': *d++ = 't'; break;
    default:
        *d++ = 'u';
        *d++ = '0';
        *d++ = '0';
        *d++ = (uint8_t)dvm_cf_hex[c >> 4];
        *d++ = (uint8_t)dvm_cf_hex[c & 15];
    }
    return d;
}

/* One pass, general case: continue writing the JSON string of s[0..n)
 * from source offset i at d (the opening quote and s[0..i) are written),
 * checking UTF-8; d has room for 6 bytes per source byte left + 1. Writes
 * the closing quote. Returns the end, or NULL when s is not valid UTF-8. */
DVM_JSCAN_NOINLINE uint8_t *dvm_cf_put_str_rest(uint8_t *d, const uint8_t *s, size_t i, size_t n)
{
    while (i < n) {
        size_t k = dvm_jscan_plain(s + i, n - i);
        if (k < 16)
            dvm_jscan_copy_short(d, s + i, k);
        else
            memcpy(d, s + i, k);
        i += k;
        d += k;
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c >= 0x80) {
            k = dvm_jscan_utf8_seq(s + i, n - i);
            if (k == 0)
                return NULL;
            dvm_jscan_copy_short(d, s + i, k);
            i += k;
            d += k;
        } else {
            d = dvm_cf_put_escape(d, c);
            i++;
        }
    }
    *d++ = '"';
    return d;
}

/* 16 bytes from s to d (unaligned), without a library call. */
static inline void dvm_cf_copy16(uint8_t *d, const uint8_t *s)
{
    uint8_t b[16];
    memcpy(b, s, 16);
    memcpy(d, b, 16);
}

/* Copy n bytes (non-overlapping) without a library call for short spans
 * (a chunk head, a small chunk): up to 64 bytes as 2 or 4 overlapping
 * 16-byte moves, up to 256 in a loop; memcpy above. */
static inline void dvm_cf_copy(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n < 16) {
        dvm_jscan_copy_short(d, s, n);
    } else if (n <= 32) {
        dvm_cf_copy16(d, s);
        dvm_cf_copy16(d + n - 16, s + n - 16);
    } else if (n <= 64) {
        dvm_cf_copy16(d, s);
        dvm_cf_copy16(d + 16, s + 16);
        dvm_cf_copy16(d + n - 32, s + n - 32);
        dvm_cf_copy16(d + n - 16, s + n - 16);
    } else if (n <= 256) {
        size_t i = 0;
        for (; n - i > 16; i += 16)
            dvm_cf_copy16(d + i, s + i);
        dvm_cf_copy16(d + n - 16, s + n - 16); /* the last 16, overlapping */
    } else {
        memcpy(d, s, n);
    }
}

/* One pass: write the JSON string of s[0..n) (quotes included) at d, which
 * has room for 6n + 2 bytes (every byte escapes to at most 6), checking
 * UTF-8 on the way. Plain bytes are copied 16 at a time while they are
 * scanned; the first byte that is not plain hands over to
 * dvm_cf_put_str_rest. Returns the end, or NULL when s is not valid
 * UTF-8 (bytes were written at d then, but the caller does not count
 * them). */
DVM_JSCAN_INLINE uint8_t *dvm_cf_put_str_1pass(uint8_t *d, const uint8_t *s, size_t n)
{
    *d++ = '"';
#if defined(DVM_JSCAN_SSE2)
    if (n >= 16) {
        size_t i = 0;
        for (; n - i >= 16; i += 16, d += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            _mm_storeu_si128((__m128i *)(void *)d, v);
            unsigned m = dvm_jscan_bad16v(v);
            if (m) {
                size_t k = (size_t)__builtin_ctz(m);
                return dvm_cf_put_str_rest(d + k, s, i + k, n);
            }
        }
        if (i < n) {
            /* Tail of < 16 bytes: the last 16 source bytes overlap the
             * clean block just copied unchanged, so store them at the same
             * distance back in the output (rewriting equal bytes). */
            size_t back = 16 - (n - i);
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
            _mm_storeu_si128((__m128i *)(void *)(d - back), v);
            unsigned m = dvm_jscan_bad16v(v) >> back;
            if (m) {
                size_t k = (size_t)__builtin_ctz(m);
                return dvm_cf_put_str_rest(d + k, s, i + k, n);
            }
            d += n - i;
        }
        *d++ = '"';
        return d;
    }
#endif
    if (n == 0) { /* s may be NULL: no arithmetic on it */
        *d++ = '"';
        return d;
    }
    return dvm_cf_put_str_rest(d, s, 0, n);
}

/* Copy n bytes, 1 <= n <= 32, without a library call. */
static inline void dvm_cf_copy_upto32(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n >= 16) {
        uint8_t a[16], b[16];
        memcpy(a, s, 16);
        memcpy(b, s + n - 16, 16);
        memcpy(d, a, 16);
        memcpy(d + n - 16, b, 16);
    } else {
        dvm_jscan_copy_short(d, s, n);
    }
}

/* Smallest chunk head: `{"type":"chunk","id":""` + `,"data":"`. */
#define DVM_CF_MIN_HEAD 32

/* The common case of dvm_msg_encode_chunk_with_tail: when `out` already
 * has room for the worst case (every data byte escaped to 6) within its
 * max, write head (a dvm_msg_chunk_head, hl bytes, ending with the data
 * string's opening quote), the JSON string body of data[0..n) and t's text
 * after its quote, in one pass, and return the new end of out's bytes
 * (out->len is NOT updated); NULL when there is no such room, t is none,
 * hl is too short, or data is not valid UTF-8 (bytes may have been written
 * past out->len then, but nothing is counted). data may be NULL when n ==
 * 0. The same bytes as dvm_msg_encode_chunk_with_head(out, head, data,
 * true, t->seq). */
static inline uint8_t *dvm_cf_encode_chunk(dvm_buf *out, const uint8_t *head, size_t hl,
                                           const uint8_t *data, size_t n,
                                           const dvm_chunk_tail *t)
{
    const size_t tl = t->len;
    const size_t max = out->max ? out->max : DVM_BUF_DEFAULT_MAX;
    if (tl < 11 || tl > sizeof t->text || hl < DVM_CF_MIN_HEAD || hl >= ((size_t)1 << 24) ||
        n >= ((size_t)1 << 24) || (!data && n))
        return NULL;
    const size_t worst = hl + tl + 6 * n; /* hl - 1 + (6n + 2) + (tl - 1) */
    if (out->cap - out->len < worst || out->len > max || worst > max - out->len)
        return NULL;
    uint8_t *d = out->data + out->len;
    dvm_cf_copy(d, head, hl - 1); /* dvm_cf_put_str_1pass writes the quote */
    d = dvm_cf_put_str_1pass(d + hl - 1, data, n);
    if (!d)
        return NULL;
    dvm_cf_copy_upto32(d, t->text + 1, tl - 1);
    return d + tl - 1;
}

/* dvm_msg_decode_chunk_line (wire/codec.h), inline. */
static inline bool dvm_cf_decode_chunk_line(dvm_msg_decoder *d, const uint8_t *p, size_t len,
                                            const uint8_t *head, size_t hl,
                                            const dvm_chunk_tail *t, dvm_str *data)
{
    const size_t tl = t->len - 1; /* the tail on the line: no '\n' */
    if (t->len < 11 || t->len > sizeof t->text || !p || !head || hl < DVM_CF_MIN_HEAD ||
        head[hl - 1] != '"' || len > d->max_len || len < hl || len - hl < tl)
        return false;
    if (!dvm_jscan_eq(p, head, hl) || !dvm_jscan_eq(p + len - tl, t->text, tl))
        return false;
    const uint8_t *s = p + hl;
    const size_t n = len - hl - tl;
    if (!dvm_jscan_all_plain(s, n)) {
        /* not all plain: still fine when the others are whole UTF-8
         * sequences (no quote, backslash or control byte) */
        size_t i = 0;
        for (;;) {
            i += dvm_jscan_plain(s + i, n - i);
            if (i >= n)
                break;
            if (s[i] < 0x80)
                return false;
            size_t k = dvm_jscan_utf8_seq(s + i, n - i);
            if (k == 0)
                return false;
            i += k;
        }
    }
    dvm_buf_reset(&d->scratch);
    d->fast_hits++;
    data->ptr = (const char *)s;
    data->len = n;
    return true;
}

#endif

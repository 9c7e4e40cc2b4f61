/* dvmstream — internal helpers shared by the session state machines.
 * Not part of the public API.
 *
 * A queued action cannot hold raw pointers into buffers that may still grow
 * (realloc) during the same event call, so it holds an sref: which buffer,
 * offset and length. Pointers are resolved when the action is popped, after
 * which the buffers do not change until the next event call. */
#ifndef DVM_SESSION_SREF_H
#define DVM_SESSION_SREF_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "wire/msg.h"
#include "wire/utf8.h"

typedef struct dvm_sref {
    uint8_t where; /* 0 = empty string; otherwise a module-defined buffer */
    size_t off;
    size_t len;
} dvm_sref;

/* The bytes r refers to in b, as a view (not owned; valid until b next
 * grows or is reset). An empty sref (where = 0, or len 0) or a NULL b gives
 * the empty string {NULL, 0}. No errors: r must come from dvm_sref_put on
 * the same b. */
static inline dvm_str dvm_sref_resolve(const dvm_buf *b, dvm_sref r)
{
    dvm_str s = {NULL, 0};
    if (r.where && b && r.len) {
        s.ptr = (const char *)b->data + r.off;
        s.len = r.len;
    }
    return s;
}

/* Append bytes to b and return an sref (where = w) to them. */
static inline dvm_err dvm_sref_put(dvm_buf *b, uint8_t w, const void *p, size_t n, dvm_sref *out)
{
    size_t off = b->len;
    dvm_err e = dvm_buf_append(b, p, n);
    if (e)
        return e;
    out->where = w;
    out->off = off;
    out->len = n;
    return DVM_OK;
}

/* Append n bytes as valid UTF-8 (each byte that does not start a valid
 * sequence becomes U+FFFD) and return an sref to them. For texts that come
 * from a processor, a verifier or the embedder and go on the wire. */
static inline dvm_err dvm_sref_put_utf8(dvm_buf *b, uint8_t w, const void *p, size_t n,
                                        dvm_sref *out)
{
    const uint8_t *t = (const uint8_t *)p;
    size_t off = b->len, i = 0;
    dvm_err e = DVM_OK;
    while (i < n && !e) {
        size_t k = dvm_utf8_seq_len(t + i, n - i);
        if (k) {
            e = dvm_buf_append(b, t + i, k);
            i += k;
        } else {
            e = dvm_buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (e) {
        b->len = off;
        return e;
    }
    out->where = w;
    out->off = off;
    out->len = b->len - off;
    return DVM_OK;
}

#endif

/* dvmstream — growable byte buffer with a hard size limit.
 *
 * Used for encoded output (NDJSON lines, tokens, frames). A dvm_buf owns its
 * storage (malloc'd); `max` bounds its length so no peer can make us grow
 * without limit. Zero-initialise (or dvm_buf_init) before use; dvm_buf_free
 * releases the storage. */
#ifndef DVM_COMMON_BUF_H
#define DVM_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct dvm_buf {
    uint8_t *data; /* owned; NULL while cap == 0 */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard limit on len; 0 means DVM_BUF_DEFAULT_MAX */
} dvm_buf;

#define DVM_BUF_DEFAULT_MAX ((size_t)64 << 20) /* 64 MiB */

/* Initialise an empty buffer whose length may never exceed `max` bytes
 * (0 = DVM_BUF_DEFAULT_MAX). Allocates nothing. */
void dvm_buf_init(dvm_buf *b, size_t max);

/* Release the storage; the buffer is left empty and reusable. */
void dvm_buf_free(dvm_buf *b);

/* Make room for `extra` more bytes. DVM_ERR_TOO_LARGE if len+extra > max,
 * DVM_ERR_NOMEM if allocation fails; the buffer is unchanged on error. */
dvm_err dvm_buf_reserve(dvm_buf *b, size_t extra);

/* Append n bytes. Errors as dvm_buf_reserve. */
dvm_err dvm_buf_append(dvm_buf *b, const void *p, size_t n);

/* Append one byte. Errors as dvm_buf_reserve. */
dvm_err dvm_buf_putc(dvm_buf *b, uint8_t c);

/* Append the decimal form of v. Errors as dvm_buf_reserve. */
dvm_err dvm_buf_put_u64(dvm_buf *b, uint64_t v);

/* Drop the first n bytes (n <= len), keeping the rest in order. */
void dvm_buf_consume(dvm_buf *b, size_t n);

/* Set len to 0, keeping the allocation. */
static inline void dvm_buf_reset(dvm_buf *b) { b->len = 0; }

#endif

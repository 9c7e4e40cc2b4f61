#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

void dvm_buf_init(dvm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void dvm_buf_free(dvm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

dvm_err dvm_buf_reserve(dvm_buf *b, size_t extra)
{
    size_t max = b->max ? b->max : DVM_BUF_DEFAULT_MAX;
    if (extra > max || b->len > max - extra)
        return DVM_ERR_TOO_LARGE;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return DVM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > max / 2 ? max : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return DVM_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return DVM_OK;
}

dvm_err dvm_buf_append(dvm_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return DVM_OK;
    dvm_err e = dvm_buf_reserve(b, n);
    if (e)
        return e;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return DVM_OK;
}

dvm_err dvm_buf_putc(dvm_buf *b, uint8_t c)
{
    dvm_err e = dvm_buf_reserve(b, 1);
    if (e)
        return e;
    b->data[b->len++] = c;
    return DVM_OK;
}

dvm_err dvm_buf_put_u64(dvm_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return dvm_buf_append(b, tmp + i, sizeof tmp - i);
}

void dvm_buf_consume(dvm_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

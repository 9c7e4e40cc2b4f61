#include "trace.h"

#include <openssl/evp.h>
#include <string.h>

void sim_trace_init(sim_trace *t, const sim_sinks *sinks)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    t->failed = !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1;
    t->md = md;
    t->len = 0;
    t->bytes = 0;
    t->lines = 0;
    t->sinks = sinks;
}

void sim_trace_flush(sim_trace *t)
{
    if (!t->len)
        return;
    if (!t->failed && EVP_DigestUpdate(t->md, t->buf, t->len) != 1)
        t->failed = 1;
    t->bytes += t->len;
    if (t->sinks && t->sinks->trace)
        t->sinks->trace(t->sinks->ctx, t->buf, t->len);
    t->len = 0;
}

static inline void room(sim_trace *t, size_t n)
{
    if (t->len + n > sizeof t->buf)
        sim_trace_flush(t);
}

/* Appends assume room() was called for the worst case of the field. */
static inline void put(sim_trace *t, const void *p, size_t n)
{
    if (t->len + n > sizeof t->buf)
        sim_trace_flush(t);
    if (n > sizeof t->buf)
        return; /* cannot happen: callers bound embedded messages */
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static inline void put_u64(sim_trace *t, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(t, tmp + i, sizeof tmp - i);
}

static inline void put_key(sim_trace *t, const char *key)
{
    size_t k = strlen(key);
    room(t, k + 4);
    t->buf[t->len++] = ',';
    t->buf[t->len++] = '"';
    memcpy(t->buf + t->len, key, k);
    t->len += k;
    t->buf[t->len++] = '"';
    t->buf[t->len++] = ':';
}

void sim_trace_begin(sim_trace *t, uint64_t t_us, const char *ev)
{
    room(t, 256);
    put(t, "{\"t\":", 5);
    put_u64(t, t_us);
    put(t, ",\"ev\":\"", 7);
    put(t, ev, strlen(ev));
    put(t, "\"", 1);
}

void sim_trace_u64(sim_trace *t, const char *key, uint64_t v)
{
    put_key(t, key);
    put_u64(t, v);
}

void sim_trace_i64(sim_trace *t, const char *key, int64_t v)
{
    put_key(t, key);
    if (v < 0) {
        put(t, "-", 1);
        put_u64(t, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(t, (uint64_t)v);
    }
}

void sim_trace_str(sim_trace *t, const char *key, const char *v, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_key(t, key);
    put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(t, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(t, e, 6);
        } else {
            put(t, &v[i], 1);
        }
    }
    put(t, "\"", 1);
}

void sim_trace_raw(sim_trace *t, const char *key, const char *json, size_t n)
{
    put_key(t, key);
    put(t, json, n);
}

void sim_trace_end(sim_trace *t)
{
    put(t, "}\n", 2);
    t->lines++;
}

void sim_trace_free(sim_trace *t)
{
    EVP_MD_CTX_free(t->md);
    t->md = NULL;
}

void sim_trace_finish(sim_trace *t, uint8_t hash[32], char hex[65])
{
    sim_trace_flush(t);
    unsigned int n = 0;
    if (t->failed || EVP_DigestFinal_ex(t->md, hash, &n) != 1 || n != 32)
        memset(hash, 0, 32);
    sim_trace_free(t);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 15];
    }
    hex[64] = 0;
}

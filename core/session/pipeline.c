#include "session/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "session/sref.h"

enum { W_NONE = 0, W_SCRATCH, W_CUR };

typedef struct plact {
    dvm_pipeline_action_type type;
    dvm_sref s;
    uint64_t batch;
    size_t chars;
} plact;

struct dvm_pipeline {
    dvm_pipeline_config cfg;
    dvm_buf acc;     /* current batch */
    size_t acc_chars;
    uint8_t part[4]; /* incomplete code point from the last chunk */
    size_t npart;
    dvm_buf ready;   /* sealed batches: [size_t len][size_t chars][bytes] */
    size_t ready_bytes; /* text bytes in ready (without the headers) */
    dvm_buf cur;     /* batch being processed */
    size_t cur_chars;
    bool busy, sub_done, failed, done, cancelled;
    uint64_t batches;

    dvm_buf scratch;
    plact *acts;
    size_t nacts, capacts, ahead;
};

void dvm_pipeline_config_default(dvm_pipeline_config *c)
{
    memset(c, 0, sizeof *c);
    c->batch_chars = DVM_DEFAULT_SUB_BATCH_SIZE;
    c->max_batch_bytes = (size_t)64 << 10;
    c->max_pending_bytes = (size_t)1 << 20;
    c->split_exact = false;
}

dvm_pipeline *dvm_pipeline_new(const dvm_pipeline_config *cfg)
{
    dvm_pipeline_config c;
    if (cfg)
        c = *cfg;
    else
        dvm_pipeline_config_default(&c);
    if (c.batch_chars == 0 || c.max_batch_bytes < 4)
        return NULL;
    if (c.max_pending_bytes < c.max_batch_bytes)
        c.max_pending_bytes = c.max_batch_bytes;
    dvm_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->cfg = c;
    dvm_buf_init(&pl->acc, c.max_batch_bytes);
    dvm_buf_init(&pl->ready, 0);
    dvm_buf_init(&pl->cur, 0);
    dvm_buf_init(&pl->scratch, 0);
    return pl;
}

void dvm_pipeline_free(dvm_pipeline *pl)
{
    if (!pl)
        return;
    dvm_buf_free(&pl->acc);
    dvm_buf_free(&pl->ready);
    dvm_buf_free(&pl->cur);
    dvm_buf_free(&pl->scratch);
    free(pl->acts);
    free(pl);
}

static void begin(dvm_pipeline *pl)
{
    if (pl->ahead >= pl->nacts) {
        pl->ahead = pl->nacts = 0;
        dvm_buf_reset(&pl->scratch);
    }
}

static dvm_err push(dvm_pipeline *pl, plact a)
{
    if (pl->nacts == pl->capacts) {
        size_t ncap = pl->capacts ? pl->capacts * 2 : 16;
        if (ncap > ((size_t)1 << 20))
            return DVM_ERR_LIMIT;
        plact *n = realloc(pl->acts, ncap * sizeof *n);
        if (!n)
            return DVM_ERR_NOMEM;
        pl->acts = n;
        pl->capacts = ncap;
    }
    pl->acts[pl->nacts++] = a;
    return DVM_OK;
}

static dvm_err push_text(dvm_pipeline *pl, dvm_pipeline_action_type t, const char *p, size_t n)
{
    plact a = {0};
    a.type = t;
    dvm_err e = dvm_sref_put(&pl->scratch, W_SCRATCH, p, n, &a.s);
    if (e)
        return e;
    return push(pl, a);
}

bool dvm_pipeline_next_action(dvm_pipeline *pl, dvm_pipeline_action *out)
{
    if (pl->ahead >= pl->nacts)
        return false;
    const plact *a = &pl->acts[pl->ahead++];
    memset(out, 0, sizeof *out);
    out->type = a->type;
    out->batch = a->batch;
    out->chars = a->chars;
    out->text = dvm_sref_resolve(a->s.where == W_CUR ? &pl->cur : &pl->scratch, a->s);
    return true;
}

size_t dvm_pipeline_pending_bytes(const dvm_pipeline *pl)
{
    return pl->ready_bytes + pl->acc.len + pl->npart;
}

/* ---- UTF-8 ----------------------------------------------------------- */

static size_t seq_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 1; /* invalid lead or stray continuation: one character */
}

static bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

size_t dvm_utf8_count(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = 0, i = 0;
    while (i < len) {
        size_t k = seq_len(p[i]), j = 1;
        while (j < k && i + j < len && is_cont(p[i + j]))
            j++;
        i += j == k ? k : 1; /* a broken sequence: its lead byte is one
                                character, each stray continuation another */
        n++;
    }
    return n;
}

/* ---- batching -------------------------------------------------------- */

static dvm_err dispatch(dvm_pipeline *pl)
{
    if (pl->busy || pl->failed || pl->cancelled)
        return DVM_OK;
    if (pl->ready.len == 0) {
        if (pl->sub_done && !pl->done && pl->acc.len == 0) {
            pl->done = true;
            plact a = {0};
            a.type = DVM_PLACT_DONE;
            return push(pl, a);
        }
        return DVM_OK;
    }
    size_t len, chars;
    memcpy(&len, pl->ready.data, sizeof len);
    memcpy(&chars, pl->ready.data + sizeof len, sizeof chars);
    dvm_buf_reset(&pl->cur);
    dvm_err e = dvm_buf_append(&pl->cur, pl->ready.data + 2 * sizeof len, len);
    if (e)
        return e;
    dvm_buf_consume(&pl->ready, 2 * sizeof len + len);
    pl->ready_bytes -= len;
    pl->cur_chars = chars;
    pl->busy = true;
    plact a = {0};
    a.type = DVM_PLACT_PROCESS_BATCH;
    a.s.where = W_CUR;
    a.s.off = 0;
    a.s.len = len;
    a.batch = ++pl->batches;
    a.chars = chars;
    return push(pl, a);
}

static dvm_err seal(dvm_pipeline *pl)
{
    if (pl->acc.len == 0)
        return DVM_OK;
    size_t len = pl->acc.len, chars = pl->acc_chars;
    dvm_err e;
    if ((e = dvm_buf_append(&pl->ready, &len, sizeof len)) ||
        (e = dvm_buf_append(&pl->ready, &chars, sizeof chars)) ||
        (e = dvm_buf_append(&pl->ready, pl->acc.data, len)))
        return e;
    pl->ready_bytes += len;
    dvm_buf_reset(&pl->acc);
    pl->acc_chars = 0;
    return dispatch(pl);
}

static dvm_err add_cp(dvm_pipeline *pl, const uint8_t *p, size_t n)
{
    dvm_err e;
    if (pl->acc.len + n > pl->cfg.max_batch_bytes && (e = seal(pl)))
        return e;
    if ((e = dvm_buf_append(&pl->acc, p, n)))
        return e;
    pl->acc_chars++;
    if (pl->cfg.split_exact && pl->acc_chars >= pl->cfg.batch_chars)
        return seal(pl);
    return DVM_OK;
}

dvm_err dvm_pipeline_on_sub_chunk(dvm_pipeline *pl, const char *data, size_t len)
{
    begin(pl);
    if (pl->sub_done || pl->failed || pl->cancelled)
        return DVM_ERR_STATE;
    if (len > pl->cfg.max_pending_bytes ||
        dvm_pipeline_pending_bytes(pl) > pl->cfg.max_pending_bytes - len)
        return DVM_ERR_LIMIT;
    const uint8_t *d = (const uint8_t *)data;
    size_t i = 0;
    dvm_err e;
    if (pl->npart) {
        size_t need = seq_len(pl->part[0]);
        while (pl->npart < need && i < len && is_cont(d[i]))
            pl->part[pl->npart++] = d[i++];
        if (pl->npart == need) {
            if ((e = add_cp(pl, pl->part, need)))
                return e;
            pl->npart = 0;
        } else if (i < len) {
            /* broken sequence: each held byte is one character */
            for (size_t k = 0; k < pl->npart; k++)
                if ((e = add_cp(pl, &pl->part[k], 1)))
                    return e;
            pl->npart = 0;
        }
    }
    while (i < len) {
        size_t need = seq_len(d[i]), j = 1;
        while (j < need && i + j < len && is_cont(d[i + j]))
            j++;
        if (j < need && i + j == len) { /* runs past the end: hold it */
            memcpy(pl->part, d + i, j);
            pl->npart = j;
            break;
        }
        if (j < need) { /* broken: the lead byte alone */
            if ((e = add_cp(pl, d + i, 1)))
                return e;
            i++;
            continue;
        }
        if ((e = add_cp(pl, d + i, need)))
            return e;
        i += need;
    }
    if (!pl->cfg.split_exact && pl->acc_chars >= pl->cfg.batch_chars)
        return seal(pl);
    return DVM_OK;
}

dvm_err dvm_pipeline_on_sub_done(dvm_pipeline *pl)
{
    begin(pl);
    if (pl->sub_done || pl->failed || pl->cancelled)
        return DVM_ERR_STATE;
    pl->sub_done = true;
    pl->npart = 0; /* an incomplete sequence at the very end is dropped */
    dvm_err e = seal(pl);
    if (e)
        return e;
    return dispatch(pl);
}

static dvm_err fail(dvm_pipeline *pl, const char *msg, size_t len)
{
    if (pl->failed || pl->done || pl->cancelled)
        return DVM_ERR_STATE;
    pl->failed = true;
    dvm_buf_reset(&pl->ready);
    pl->ready_bytes = 0;
    dvm_buf_reset(&pl->acc);
    pl->acc_chars = 0;
    pl->npart = 0;
    if (len > 1024)
        len = 1024;
    return push_text(pl, DVM_PLACT_ERROR, msg, len);
}

dvm_err dvm_pipeline_on_sub_error(dvm_pipeline *pl, const char *msg, size_t len)
{
    begin(pl);
    return fail(pl, msg, len);
}

dvm_err dvm_pipeline_on_processor_chunk(dvm_pipeline *pl, const char *data, size_t len)
{
    begin(pl);
    if (!pl->busy || pl->failed || pl->cancelled)
        return DVM_ERR_STATE;
    return push_text(pl, DVM_PLACT_OUTPUT, data, len);
}

dvm_err dvm_pipeline_on_processor_done(dvm_pipeline *pl)
{
    begin(pl);
    if (!pl->busy || pl->failed || pl->cancelled)
        return DVM_ERR_STATE;
    pl->busy = false;
    return dispatch(pl);
}

dvm_err dvm_pipeline_on_processor_error(dvm_pipeline *pl, const char *msg, size_t len)
{
    begin(pl);
    if (!pl->busy)
        return DVM_ERR_STATE;
    pl->busy = false;
    return fail(pl, msg, len);
}

void dvm_pipeline_cancel(dvm_pipeline *pl)
{
    pl->cancelled = true;
    pl->nacts = pl->ahead = 0;
}

/* dvmstream — the mint store vtable over SQLite (see mint_sqlite.h). */
#include "mint/mint_sqlite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

struct dvm_mint_sqlite {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS proofs_used ("
    "  y BLOB PRIMARY KEY, state INTEGER NOT NULL, quote TEXT, created INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS signed_outputs ("
    "  b_ BLOB PRIMARY KEY, amount INTEGER NOT NULL, id TEXT NOT NULL, c_ BLOB NOT NULL,"
    "  has_dleq INTEGER NOT NULL, dleq_e BLOB, dleq_s BLOB, created INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mint_quotes ("
    "  quote TEXT PRIMARY KEY, request TEXT NOT NULL, amount INTEGER NOT NULL,"
    "  unit TEXT NOT NULL, state INTEGER NOT NULL, expiry INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS melt_quotes ("
    "  quote TEXT PRIMARY KEY, request TEXT NOT NULL, amount INTEGER NOT NULL,"
    "  fee_reserve INTEGER NOT NULL, unit TEXT NOT NULL, state INTEGER NOT NULL,"
    "  expiry INTEGER NOT NULL, preimage TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);";

static dvm_err fail(dvm_mint_sqlite *s, const char *what)
{
    fprintf(stderr, "mint db: %s: %s\n", what, sqlite3_errmsg(s->db));
    return DVM_ERR_STATE;
}

static dvm_err exec(dvm_mint_sqlite *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "mint db: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return DVM_ERR_STATE;
    }
    return DVM_OK;
}

static sqlite3_stmt *prep(dvm_mint_sqlite *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(s, sql);
        return NULL;
    }
    return st;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

dvm_err dvm_mint_sqlite_open(const char *path, dvm_mint_sqlite **out, char *err, size_t errlen)
{
    *out = NULL;
    dvm_mint_sqlite *s = calloc(1, sizeof *s);
    if (!s)
        return DVM_ERR_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite3_close(s->db);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return DVM_ERR_STATE;
    }
    sqlite3_busy_timeout(s->db, 10000);
    if (exec(s, "PRAGMA journal_mode=WAL;") || exec(s, "PRAGMA synchronous=FULL;") ||
        exec(s, SCHEMA)) {
        snprintf(err, errlen, "cannot initialise %s: %s", path, sqlite3_errmsg(s->db));
        dvm_mint_sqlite_close(s);
        return DVM_ERR_STATE;
    }
    *out = s;
    return DVM_OK;
}

void dvm_mint_sqlite_close(dvm_mint_sqlite *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static dvm_err finish_txn(dvm_mint_sqlite *s, dvm_err e)
{
    if (e == DVM_OK) {
        if (exec(s, "COMMIT;") == DVM_OK)
            return DVM_OK;
        e = DVM_ERR_STATE;
    }
    exec(s, "ROLLBACK;");
    return e;
}

dvm_err dvm_mint_sqlite_seed(dvm_mint_sqlite *s, const uint8_t fresh[32], bool must_match,
                             uint8_t out[32])
{
    dvm_err e = DVM_OK;
    pthread_mutex_lock(&s->mu);
    if (exec(s, "BEGIN IMMEDIATE;")) {
        pthread_mutex_unlock(&s->mu);
        return DVM_ERR_STATE;
    }
    sqlite3_stmt *st = prep(s, "SELECT value FROM meta WHERE key = 'seed'");
    if (!st) {
        e = DVM_ERR_STATE;
        goto done;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(out, sqlite3_column_blob(st, 0), 32);
        if (must_match && memcmp(out, fresh, 32) != 0)
            e = DVM_ERR_EXISTS;
        sqlite3_finalize(st);
        goto done;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        e = fail(s, "read seed");
        goto done;
    }
    st = prep(s, "INSERT OR REPLACE INTO meta(key, value) VALUES('seed', ?)");
    if (!st) {
        e = DVM_ERR_STATE;
        goto done;
    }
    sqlite3_bind_blob(st, 1, fresh, 32, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        e = fail(s, "write seed");
    sqlite3_finalize(st);
    memcpy(out, fresh, 32);
done:
    e = finish_txn(s, e);
    pthread_mutex_unlock(&s->mu);
    return e;
}

/* ---- the vtable ------------------------------------------------------------ */

/* State of Y: 0 unknown (UNSPENT), else the stored state. -1 on error. */
static int y_lookup(dvm_mint_sqlite *s, sqlite3_stmt *q, const uint8_t Y[DVM_POINT_BYTES],
                    dvm_proof_state *state, bool *known)
{
    sqlite3_reset(q);
    sqlite3_bind_blob(q, 1, Y, DVM_POINT_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *known = true;
        *state = sqlite3_column_int(q, 0) == DVM_PROOF_PENDING ? DVM_PROOF_PENDING
                                                                 : DVM_PROOF_SPENT;
        return 0;
    }
    if (rc == SQLITE_DONE) {
        *known = false;
        *state = DVM_PROOF_UNSPENT;
        return 0;
    }
    fail(s, "read proof state");
    return -1;
}

static int quote_state(dvm_mint_sqlite *s, dvm_quote_kind kind, const char *id, int *state)
{
    sqlite3_stmt *q = prep(s, kind == DVM_QUOTE_MINT ? "SELECT state FROM mint_quotes WHERE quote = ?"
                                                     : "SELECT state FROM melt_quotes WHERE quote = ?");
    if (!q)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW)
        *state = sqlite3_column_int(q, 0);
    else if (rc == SQLITE_DONE)
        *state = -1;
    else
        ret = -1, fail(s, "read quote state");
    sqlite3_finalize(q);
    return ret;
}

static dvm_err v_commit(void *ctx, const dvm_mint_commit *c, dvm_mint_conflict *conflict,
                        size_t *conflict_index, int *found_state)
{
    dvm_mint_sqlite *s = ctx;
    dvm_err e = DVM_OK;
    sqlite3_stmt *qy = NULL, *qb = NULL, *wy = NULL, *wb = NULL, *wq = NULL;
    int64_t now = (int64_t)time(NULL);
    *conflict = DVM_CONFLICT_NONE;
    pthread_mutex_lock(&s->mu);
    if (exec(s, "BEGIN IMMEDIATE;")) {
        pthread_mutex_unlock(&s->mu);
        return DVM_ERR_STATE;
    }
    if (!(qy = prep(s, "SELECT state FROM proofs_used WHERE y = ?")) ||
        !(qb = prep(s, "SELECT 1 FROM signed_outputs WHERE b_ = ?"))) {
        e = DVM_ERR_STATE;
        goto done;
    }
    /* Preconditions. */
    for (size_t i = 0; i < c->n_Ys; i++) {
        dvm_proof_state st;
        bool known;
        if (y_lookup(s, qy, c->Ys[i], &st, &known)) {
            e = DVM_ERR_STATE;
            goto done;
        }
        if (c->settle ? st != DVM_PROOF_PENDING : known) {
            *conflict = c->settle ? DVM_CONFLICT_NOT_PENDING
                                  : (st == DVM_PROOF_PENDING ? DVM_CONFLICT_PENDING
                                                             : DVM_CONFLICT_SPENT);
            *conflict_index = i;
            e = DVM_ERR_EXISTS;
            goto done;
        }
    }
    for (size_t i = 0; i < c->n_B_s; i++) {
        sqlite3_reset(qb);
        sqlite3_bind_blob(qb, 1, c->B_s[i], DVM_POINT_BYTES, SQLITE_STATIC);
        int rc = sqlite3_step(qb);
        if (rc == SQLITE_ROW) {
            *conflict = DVM_CONFLICT_OUTPUT_SIGNED;
            *conflict_index = i;
            e = DVM_ERR_EXISTS;
            goto done;
        }
        if (rc != SQLITE_DONE) {
            e = fail(s, "read signed output");
            goto done;
        }
    }
    if (c->quote_kind != DVM_QUOTE_NONE) {
        int qs;
        if (quote_state(s, c->quote_kind, c->quote_id, &qs)) {
            e = DVM_ERR_STATE;
            goto done;
        }
        if (qs != c->quote_from) {
            *conflict = DVM_CONFLICT_QUOTE_STATE;
            *found_state = qs;
            e = DVM_ERR_EXISTS;
            goto done;
        }
    }
    /* Changes. */
    if (c->n_Ys) {
        const char *sql = !c->settle ? "INSERT INTO proofs_used(y, state, created, quote) VALUES(?, ?, ?, ?)"
                          : c->Ys_state == DVM_PROOF_UNSPENT ? "DELETE FROM proofs_used WHERE y = ?"
                                                              : "UPDATE proofs_used SET state = ?2, created = ?3 WHERE y = ?1";
        if (!(wy = prep(s, sql))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        for (size_t i = 0; i < c->n_Ys; i++) {
            sqlite3_reset(wy);
            sqlite3_bind_blob(wy, 1, c->Ys[i], DVM_POINT_BYTES, SQLITE_STATIC);
            if (sqlite3_bind_parameter_count(wy) >= 3) {
                sqlite3_bind_int(wy, 2, (int)c->Ys_state);
                sqlite3_bind_int64(wy, 3, now);
            }
            if (sqlite3_bind_parameter_count(wy) >= 4) {
                /* Keep the quote with PENDING Ys (melt), for recovery. */
                if (c->quote_kind != DVM_QUOTE_NONE && c->quote_id)
                    sqlite3_bind_text(wy, 4, c->quote_id, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(wy, 4);
            }
            if (sqlite3_step(wy) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
                    /* the same Y twice in one request */
                    *conflict = DVM_CONFLICT_SPENT;
                    *conflict_index = i;
                    e = DVM_ERR_EXISTS;
                } else {
                    e = fail(s, "write proof state");
                }
                goto done;
            }
        }
    }
    if (c->n_B_s) {
        if (!(wb = prep(s, "INSERT INTO signed_outputs(b_, amount, id, c_, has_dleq, dleq_e,"
                           " dleq_s, created) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        for (size_t i = 0; i < c->n_B_s; i++) {
            const dvm_blind_signature *g = &c->sigs[i];
            sqlite3_reset(wb);
            sqlite3_bind_blob(wb, 1, c->B_s[i], DVM_POINT_BYTES, SQLITE_STATIC);
            sqlite3_bind_int64(wb, 2, (int64_t)g->amount);
            sqlite3_bind_text(wb, 3, g->id, -1, SQLITE_STATIC);
            sqlite3_bind_blob(wb, 4, g->C_, DVM_POINT_BYTES, SQLITE_STATIC);
            sqlite3_bind_int(wb, 5, g->has_dleq ? 1 : 0);
            sqlite3_bind_blob(wb, 6, g->dleq.e, DVM_SCALAR_BYTES, SQLITE_STATIC);
            sqlite3_bind_blob(wb, 7, g->dleq.s, DVM_SCALAR_BYTES, SQLITE_STATIC);
            sqlite3_bind_int64(wb, 8, now);
            if (sqlite3_step(wb) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
                    *conflict = DVM_CONFLICT_OUTPUT_SIGNED;
                    *conflict_index = i;
                    e = DVM_ERR_EXISTS;
                } else {
                    e = fail(s, "record signed output");
                }
                goto done;
            }
        }
    }
    if (c->quote_kind != DVM_QUOTE_NONE) {
        const char *sql;
        if (c->quote_kind == DVM_QUOTE_MINT)
            sql = "UPDATE mint_quotes SET state = ?1 WHERE quote = ?2";
        else if (c->payment_preimage)
            sql = "UPDATE melt_quotes SET state = ?1, preimage = ?3 WHERE quote = ?2";
        else
            sql = "UPDATE melt_quotes SET state = ?1 WHERE quote = ?2";
        if (!(wq = prep(s, sql))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        sqlite3_bind_int(wq, 1, c->quote_to);
        sqlite3_bind_text(wq, 2, c->quote_id, -1, SQLITE_STATIC);
        if (c->quote_kind == DVM_QUOTE_MELT && c->payment_preimage)
            sqlite3_bind_text(wq, 3, c->payment_preimage, -1, SQLITE_STATIC);
        if (sqlite3_step(wq) != SQLITE_DONE)
            e = fail(s, "update quote");
    }
done:
    sqlite3_finalize(qy);
    sqlite3_finalize(qb);
    sqlite3_finalize(wy);
    sqlite3_finalize(wb);
    sqlite3_finalize(wq);
    e = finish_txn(s, e);
    pthread_mutex_unlock(&s->mu);
    return e;
}

static dvm_err v_proof_states(void *ctx, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n,
                              dvm_proof_state *states)
{
    dvm_mint_sqlite *s = ctx;
    dvm_err e = DVM_OK;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT state FROM proofs_used WHERE y = ?");
    if (!q)
        e = DVM_ERR_STATE;
    for (size_t i = 0; i < n && e == DVM_OK; i++) {
        bool known;
        if (y_lookup(s, q, Ys[i], &states[i], &known))
            e = DVM_ERR_STATE;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return e;
}

static dvm_err step_insert(dvm_mint_sqlite *s, sqlite3_stmt *q, const char *what)
{
    dvm_err e = DVM_OK;
    if (sqlite3_step(q) != SQLITE_DONE)
        e = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY ? DVM_ERR_EXISTS
                                                                            : fail(s, what);
    sqlite3_finalize(q);
    return e;
}

static dvm_err v_put_mint_quote(void *ctx, const dvm_mint_quote *mq)
{
    dvm_mint_sqlite *s = ctx;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "INSERT INTO mint_quotes(quote, request, amount, unit, state,"
                              " expiry, created) VALUES(?, ?, ?, ?, ?, ?, ?)");
    dvm_err e = DVM_ERR_STATE;
    if (q) {
        sqlite3_bind_text(q, 1, mq->quote, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, mq->request, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (int64_t)mq->amount);
        sqlite3_bind_text(q, 4, mq->unit, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 5, (int)mq->state);
        sqlite3_bind_int64(q, 6, (int64_t)mq->expiry);
        sqlite3_bind_int64(q, 7, (int64_t)time(NULL));
        e = step_insert(s, q, "insert mint quote");
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static dvm_err v_put_melt_quote(void *ctx, const dvm_melt_quote *mq)
{
    dvm_mint_sqlite *s = ctx;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "INSERT INTO melt_quotes(quote, request, amount, fee_reserve, unit,"
                              " state, expiry, preimage, created) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    dvm_err e = DVM_ERR_STATE;
    if (q) {
        sqlite3_bind_text(q, 1, mq->quote, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, mq->request, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (int64_t)mq->amount);
        sqlite3_bind_int64(q, 4, (int64_t)mq->fee_reserve);
        sqlite3_bind_text(q, 5, mq->unit, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 6, (int)mq->state);
        sqlite3_bind_int64(q, 7, (int64_t)mq->expiry);
        sqlite3_bind_text(q, 8, mq->payment_preimage, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 9, (int64_t)time(NULL));
        e = step_insert(s, q, "insert melt quote");
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static dvm_err v_get_mint_quote(void *ctx, const char *id, dvm_mint_quote *out)
{
    dvm_mint_sqlite *s = ctx;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT request, amount, unit, state, expiry FROM mint_quotes"
                              " WHERE quote = ?");
    dvm_err e = DVM_ERR_STATE;
    if (q) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            snprintf(out->quote, sizeof out->quote, "%s", id);
            copy_text(out->request, sizeof out->request, q, 0);
            out->amount = (uint64_t)sqlite3_column_int64(q, 1);
            copy_text(out->unit, sizeof out->unit, q, 2);
            out->state = (dvm_mint_quote_state)sqlite3_column_int(q, 3);
            out->expiry = (uint64_t)sqlite3_column_int64(q, 4);
            e = DVM_OK;
        } else if (rc == SQLITE_DONE) {
            e = DVM_ERR_NOT_FOUND;
        } else {
            e = fail(s, "read mint quote");
        }
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static dvm_err v_get_melt_quote(void *ctx, const char *id, dvm_melt_quote *out)
{
    dvm_mint_sqlite *s = ctx;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT request, amount, fee_reserve, unit, state, expiry, preimage"
                              " FROM melt_quotes WHERE quote = ?");
    dvm_err e = DVM_ERR_STATE;
    if (q) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            snprintf(out->quote, sizeof out->quote, "%s", id);
            copy_text(out->request, sizeof out->request, q, 0);
            out->amount = (uint64_t)sqlite3_column_int64(q, 1);
            out->fee_reserve = (uint64_t)sqlite3_column_int64(q, 2);
            copy_text(out->unit, sizeof out->unit, q, 3);
            out->state = (dvm_melt_quote_state)sqlite3_column_int(q, 4);
            out->expiry = (uint64_t)sqlite3_column_int64(q, 5);
            copy_text(out->payment_preimage, sizeof out->payment_preimage, q, 6);
            e = DVM_OK;
        } else if (rc == SQLITE_DONE) {
            e = DVM_ERR_NOT_FOUND;
        } else {
            e = fail(s, "read melt quote");
        }
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

void dvm_mint_sqlite_vtable(dvm_mint_sqlite *s, dvm_mint_store *vt)
{
    memset(vt, 0, sizeof *vt);
    vt->ctx = s;
    vt->commit = v_commit;
    vt->proof_states = v_proof_states;
    vt->put_mint_quote = v_put_mint_quote;
    vt->put_melt_quote = v_put_melt_quote;
    vt->get_mint_quote = v_get_mint_quote;
    vt->get_melt_quote = v_get_melt_quote;
}

dvm_err dvm_mint_sqlite_restore(dvm_mint_sqlite *s, const uint8_t (*B_s)[DVM_POINT_BYTES],
                                size_t n, bool *found, dvm_blind_signature *sigs)
{
    dvm_err e = DVM_OK;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT amount, id, c_, has_dleq, dleq_e, dleq_s FROM signed_outputs"
                              " WHERE b_ = ?");
    if (!q)
        e = DVM_ERR_STATE;
    for (size_t i = 0; i < n && e == DVM_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_blob(q, 1, B_s[i], DVM_POINT_BYTES, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        found[i] = false;
        memset(&sigs[i], 0, sizeof sigs[i]);
        if (rc == SQLITE_ROW) {
            dvm_blind_signature *g = &sigs[i];
            g->amount = (uint64_t)sqlite3_column_int64(q, 0);
            copy_text(g->id, sizeof g->id, q, 1);
            if (sqlite3_column_bytes(q, 2) == DVM_POINT_BYTES)
                memcpy(g->C_, sqlite3_column_blob(q, 2), DVM_POINT_BYTES);
            g->has_dleq = sqlite3_column_int(q, 3) != 0;
            if (sqlite3_column_bytes(q, 4) == DVM_SCALAR_BYTES)
                memcpy(g->dleq.e, sqlite3_column_blob(q, 4), DVM_SCALAR_BYTES);
            if (sqlite3_column_bytes(q, 5) == DVM_SCALAR_BYTES)
                memcpy(g->dleq.s, sqlite3_column_blob(q, 5), DVM_SCALAR_BYTES);
            found[i] = true;
        } else if (rc != SQLITE_DONE) {
            e = fail(s, "read signed output");
        }
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return e;
}

dvm_err dvm_mint_sqlite_count_spent(dvm_mint_sqlite *s, uint64_t *n)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT COUNT(*) FROM proofs_used WHERE state = 2");
    dvm_err e = DVM_ERR_STATE;
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(q, 0);
        e = DVM_OK;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return e;
}

dvm_err dvm_mint_sqlite_pending_melts(dvm_mint_sqlite *s, dvm_pending_melt **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    dvm_err e = DVM_OK;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT quote FROM melt_quotes WHERE state = 1 ORDER BY created LIMIT 1000");
    sqlite3_stmt *y = prep(s, "SELECT y FROM proofs_used WHERE quote = ? AND state = 1 LIMIT 10000");
    if (!q || !y) {
        e = DVM_ERR_STATE;
        goto done;
    }
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            dvm_pending_melt *np = realloc(*out, nc * sizeof *np);
            if (!np) {
                e = DVM_ERR_NOMEM;
                goto done;
            }
            *out = np;
            cap = nc;
        }
        dvm_pending_melt *pm = &(*out)[*n];
        memset(pm, 0, sizeof *pm);
        copy_text(pm->quote, sizeof pm->quote, q, 0);
        (*n)++;
        sqlite3_reset(y);
        sqlite3_bind_text(y, 1, pm->quote, -1, SQLITE_TRANSIENT);
        size_t ycap = 0;
        while (sqlite3_step(y) == SQLITE_ROW) {
            if (sqlite3_column_bytes(y, 0) != DVM_POINT_BYTES)
                continue;
            if (pm->n_Ys == ycap) {
                size_t nc = ycap ? ycap * 2 : 8;
                uint8_t (*ny)[DVM_POINT_BYTES] = realloc(pm->Ys, nc * sizeof *ny);
                if (!ny) {
                    e = DVM_ERR_NOMEM;
                    goto done;
                }
                pm->Ys = ny;
                ycap = nc;
            }
            memcpy(pm->Ys[pm->n_Ys++], sqlite3_column_blob(y, 0), DVM_POINT_BYTES);
        }
    }
    if (rc != SQLITE_DONE && e == DVM_OK)
        e = fail(s, "list pending melts");
done:
    sqlite3_finalize(q);
    sqlite3_finalize(y);
    pthread_mutex_unlock(&s->mu);
    if (e) {
        dvm_mint_sqlite_pending_melts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return e;
}

void dvm_mint_sqlite_pending_melts_free(dvm_pending_melt *pm, size_t n)
{
    for (size_t i = 0; pm && i < n; i++)
        free(pm[i].Ys);
    free(pm);
}

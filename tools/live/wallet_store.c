/* dvmstream — the HTTP wallet's proof store in SQLite (see wallet_store.h). */
#include "live/wallet_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

struct dvm_wallet_store {
    sqlite3 *db;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS proofs ("
    "  secret TEXT PRIMARY KEY, mint TEXT NOT NULL, id TEXT NOT NULL, amount INTEGER NOT NULL,"
    "  c BLOB NOT NULL, has_dleq INTEGER NOT NULL, dleq_e BLOB, dleq_s BLOB, has_r INTEGER NOT NULL,"
    "  dleq_r BLOB, state INTEGER NOT NULL, op INTEGER, created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS proofs_state ON proofs(mint, state);"
    "CREATE TABLE IF NOT EXISTS ops ("
    "  op INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL, mint TEXT NOT NULL,"
    "  quote TEXT NOT NULL DEFAULT '', input_prev INTEGER NOT NULL, open INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS op_outputs ("
    "  op INTEGER NOT NULL, idx INTEGER NOT NULL, amount INTEGER NOT NULL, id TEXT NOT NULL,"
    "  b_ BLOB NOT NULL, secret TEXT NOT NULL, r BLOB NOT NULL, tag INTEGER NOT NULL,"
    "  PRIMARY KEY(op, idx));";

const char *dvm_wproof_state_name(dvm_wproof_state s)
{
    switch (s) {
    case DVM_WPROOF_UNSPENT: return "unspent";
    case DVM_WPROOF_PENDING: return "pending";
    case DVM_WPROOF_RESERVED: return "reserved";
    case DVM_WPROOF_SENT: return "sent";
    case DVM_WPROOF_SPENT: return "spent";
    case DVM_WPROOF_INCOMING: return "incoming";
    case DVM_WPROOF_REJECTED: return "rejected";
    }
    return "?";
}

static dvm_err fail(dvm_wallet_store *st, const char *what)
{
    fprintf(stderr, "wallet db: %s: %s\n", what, sqlite3_errmsg(st->db));
    return DVM_ERR_STATE;
}

static dvm_err exec(dvm_wallet_store *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "wallet db: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return DVM_ERR_STATE;
    }
    return DVM_OK;
}

static sqlite3_stmt *prep(dvm_wallet_store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        fail(st, sql);
        return NULL;
    }
    return s;
}

static dvm_err begin(dvm_wallet_store *st)
{
    return exec(st, "BEGIN IMMEDIATE;");
}

static dvm_err end(dvm_wallet_store *st, dvm_err e)
{
    if (e == DVM_OK) {
        if (exec(st, "COMMIT;") == DVM_OK)
            return DVM_OK;
        e = DVM_ERR_STATE;
    }
    exec(st, "ROLLBACK;");
    return e;
}

dvm_err dvm_wallet_store_open(const char *path, dvm_wallet_store **out, char *err, size_t errlen)
{
    *out = NULL;
    dvm_wallet_store *st = calloc(1, sizeof *st);
    if (!st)
        return DVM_ERR_NOMEM;
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        sqlite3_close(st->db);
        free(st);
        return DVM_ERR_STATE;
    }
    sqlite3_busy_timeout(st->db, 10000);
    if (exec(st, "PRAGMA journal_mode=WAL;") || exec(st, "PRAGMA synchronous=FULL;") ||
        exec(st, SCHEMA)) {
        snprintf(err, errlen, "cannot initialise %s: %s", path, sqlite3_errmsg(st->db));
        dvm_wallet_store_close(st);
        return DVM_ERR_STATE;
    }
    *out = st;
    return DVM_OK;
}

void dvm_wallet_store_close(dvm_wallet_store *st)
{
    if (!st)
        return;
    sqlite3_close(st->db);
    free(st);
}

/* Insert one proof (inside a transaction). */
static dvm_err insert_proof(dvm_wallet_store *st, sqlite3_stmt *q, const char *mint,
                            const dvm_proof *p, dvm_wproof_state state, int64_t op)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    sqlite3_bind_text(q, 1, p->secret, (int)p->secret_len, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mint, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (int64_t)p->amount);
    sqlite3_bind_blob(q, 5, p->C, DVM_POINT_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, p->has_dleq ? 1 : 0);
    sqlite3_bind_blob(q, 7, p->dleq.e, DVM_SCALAR_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(q, 8, p->dleq.s, DVM_SCALAR_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(q, 9, p->dleq.has_r ? 1 : 0);
    sqlite3_bind_blob(q, 10, p->dleq.r, DVM_SCALAR_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(q, 11, (int)state);
    if (op > 0)
        sqlite3_bind_int64(q, 12, op);
    else
        sqlite3_bind_null(q, 12);
    sqlite3_bind_int64(q, 13, (int64_t)time(NULL));
    if (sqlite3_step(q) == SQLITE_DONE)
        return DVM_OK;
    if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        return DVM_ERR_EXISTS;
    return fail(st, "insert proof");
}

static const char INSERT_PROOF[] =
    "INSERT INTO proofs(secret, mint, id, amount, c, has_dleq, dleq_e, dleq_s, has_r, dleq_r,"
    " state, op, created) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

dvm_err dvm_wallet_store_add(dvm_wallet_store *st, const char *mint, const dvm_proof *p, size_t n,
                             dvm_wproof_state state)
{
    if (begin(st))
        return DVM_ERR_STATE;
    sqlite3_stmt *q = prep(st, INSERT_PROOF);
    dvm_err e = q ? DVM_OK : DVM_ERR_STATE;
    for (size_t i = 0; i < n && e == DVM_OK; i++)
        e = insert_proof(st, q, mint, &p[i], state, 0);
    sqlite3_finalize(q);
    return end(st, e);
}

dvm_err dvm_wallet_store_add_groups(dvm_wallet_store *st, const char *mint,
                                    const dvm_proof *const *groups, const size_t *counts,
                                    size_t n_groups, dvm_wproof_state state, dvm_err *results)
{
    for (size_t g = 0; g < n_groups; g++)
        results[g] = DVM_ERR_STATE;
    if (n_groups == 0)
        return DVM_OK;
    if (begin(st))
        return DVM_ERR_STATE;
    sqlite3_stmt *q = prep(st, INSERT_PROOF);
    dvm_err e = q ? DVM_OK : DVM_ERR_STATE;
    for (size_t g = 0; g < n_groups && e == DVM_OK; g++) {
        /* Each group in its own savepoint: a duplicate undoes only its
         * own group. */
        if ((e = exec(st, "SAVEPOINT grp;")))
            break;
        dvm_err ge = DVM_OK;
        for (size_t i = 0; i < counts[g] && ge == DVM_OK; i++)
            ge = insert_proof(st, q, mint, &groups[g][i], state, 0);
        if (ge == DVM_OK) {
            e = exec(st, "RELEASE grp;");
        } else if (ge == DVM_ERR_EXISTS) {
            e = exec(st, "ROLLBACK TO grp;");
            if (!e)
                e = exec(st, "RELEASE grp;");
        } else {
            e = ge;
        }
        results[g] = ge;
    }
    sqlite3_finalize(q);
    e = end(st, e);
    if (e)
        for (size_t g = 0; g < n_groups; g++)
            results[g] = e;
    return e;
}

dvm_err dvm_wallet_store_set_sync(dvm_wallet_store *st, bool full)
{
    return exec(st, full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;");
}

static void read_proof(sqlite3_stmt *q, dvm_proof *p)
{
    /* columns: secret, id, amount, c, has_dleq, dleq_e, dleq_s, has_r, dleq_r */
    memset(p, 0, sizeof *p);
    const unsigned char *sec = sqlite3_column_text(q, 0);
    int sl = sqlite3_column_bytes(q, 0);
    if (sl > DVM_SECRET_MAX)
        sl = DVM_SECRET_MAX;
    if (sec)
        memcpy(p->secret, sec, (size_t)sl);
    p->secret[sl] = '\0';
    p->secret_len = (size_t)sl;
    const unsigned char *id = sqlite3_column_text(q, 1);
    snprintf(p->id, sizeof p->id, "%s", id ? (const char *)id : "");
    p->amount = (uint64_t)sqlite3_column_int64(q, 2);
    if (sqlite3_column_bytes(q, 3) == DVM_POINT_BYTES)
        memcpy(p->C, sqlite3_column_blob(q, 3), DVM_POINT_BYTES);
    p->has_dleq = sqlite3_column_int(q, 4) != 0;
    if (sqlite3_column_bytes(q, 5) == DVM_SCALAR_BYTES)
        memcpy(p->dleq.e, sqlite3_column_blob(q, 5), DVM_SCALAR_BYTES);
    if (sqlite3_column_bytes(q, 6) == DVM_SCALAR_BYTES)
        memcpy(p->dleq.s, sqlite3_column_blob(q, 6), DVM_SCALAR_BYTES);
    p->dleq.has_r = sqlite3_column_int(q, 7) != 0;
    if (sqlite3_column_bytes(q, 8) == DVM_SCALAR_BYTES)
        memcpy(p->dleq.r, sqlite3_column_blob(q, 8), DVM_SCALAR_BYTES);
}

/* Run a SELECT of proof columns (bound by the caller) into a malloc'd
 * array. */
static dvm_err collect(dvm_wallet_store *st, sqlite3_stmt *q, dvm_proof **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            dvm_proof *np = realloc(*out, nc * sizeof *np);
            if (!np) {
                free(*out);
                *out = NULL;
                *n = 0;
                return DVM_ERR_NOMEM;
            }
            *out = np;
            cap = nc;
        }
        read_proof(q, &(*out)[(*n)++]);
    }
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return fail(st, "list proofs");
    }
    return DVM_OK;
}

#define PROOF_COLS "secret, id, amount, c, has_dleq, dleq_e, dleq_s, has_r, dleq_r"

dvm_err dvm_wallet_store_list(dvm_wallet_store *st, const char *mint, dvm_wproof_state state,
                              dvm_proof **out, size_t *n)
{
    sqlite3_stmt *q = prep(st, "SELECT " PROOF_COLS " FROM proofs WHERE mint = ? AND state = ?"
                               " ORDER BY rowid");
    if (!q) {
        *out = NULL;
        *n = 0;
        return DVM_ERR_STATE;
    }
    sqlite3_bind_text(q, 1, mint, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)state);
    dvm_err e = collect(st, q, out, n);
    sqlite3_finalize(q);
    return e;
}

dvm_err dvm_wallet_store_sum(dvm_wallet_store *st, const char *mint, dvm_wproof_state state,
                             uint64_t *sats)
{
    sqlite3_stmt *q = prep(st, "SELECT COALESCE(SUM(amount), 0) FROM proofs WHERE mint = ? AND state = ?");
    if (!q)
        return DVM_ERR_STATE;
    sqlite3_bind_text(q, 1, mint, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)state);
    dvm_err e = DVM_OK;
    if (sqlite3_step(q) == SQLITE_ROW)
        *sats = (uint64_t)sqlite3_column_int64(q, 0);
    else
        e = fail(st, "sum proofs");
    sqlite3_finalize(q);
    return e;
}

dvm_err dvm_wallet_store_count_in(dvm_wallet_store *st, const dvm_proof *p, size_t n,
                                  dvm_wproof_state state, size_t *count)
{
    *count = 0;
    sqlite3_stmt *q = prep(st, "SELECT 1 FROM proofs WHERE secret = ? AND state = ?");
    if (!q)
        return DVM_ERR_STATE;
    dvm_err e = DVM_OK;
    for (size_t i = 0; i < n && e == DVM_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, p[i].secret, (int)p[i].secret_len, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, (int)state);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            (*count)++;
        else if (rc != SQLITE_DONE)
            e = fail(st, "count proofs");
    }
    sqlite3_finalize(q);
    return e;
}

/* Move proofs (by secret) from one state to another inside a transaction;
 * DVM_ERR_PROTO if one is not in `from`. */
static dvm_err move_locked(dvm_wallet_store *st, const dvm_proof *p, size_t n,
                           dvm_wproof_state from, dvm_wproof_state to, int64_t op)
{
    sqlite3_stmt *q = prep(st, "UPDATE proofs SET state = ?, op = ? WHERE secret = ? AND state = ?");
    if (!q)
        return DVM_ERR_STATE;
    dvm_err e = DVM_OK;
    for (size_t i = 0; i < n && e == DVM_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, (int)to);
        if (op > 0)
            sqlite3_bind_int64(q, 2, op);
        else
            sqlite3_bind_null(q, 2);
        sqlite3_bind_text(q, 3, p[i].secret, (int)p[i].secret_len, SQLITE_STATIC);
        sqlite3_bind_int(q, 4, (int)from);
        if (sqlite3_step(q) != SQLITE_DONE)
            e = fail(st, "move proof");
        else if (sqlite3_changes(st->db) != 1)
            e = DVM_ERR_PROTO;
    }
    sqlite3_finalize(q);
    return e;
}

dvm_err dvm_wallet_store_move(dvm_wallet_store *st, const dvm_proof *p, size_t n,
                              dvm_wproof_state from, dvm_wproof_state to)
{
    if (begin(st))
        return DVM_ERR_STATE;
    return end(st, move_locked(st, p, n, from, to, 0));
}

dvm_err dvm_wallet_store_op_begin(dvm_wallet_store *st, dvm_wop_kind kind, const char *mint,
                                  const char *quote, const dvm_proof *inputs, size_t n_in,
                                  dvm_wproof_state input_prev, bool insert_inputs,
                                  const dvm_wallet_output *outs, const int *tags, size_t n_out,
                                  int64_t *op)
{
    if (begin(st))
        return DVM_ERR_STATE;
    dvm_err e = DVM_OK;
    sqlite3_stmt *q = prep(st, "INSERT INTO ops(kind, mint, quote, input_prev, open, created)"
                               " VALUES(?, ?, ?, ?, 1, ?)");
    sqlite3_stmt *o = NULL, *ip = NULL;
    if (!q) {
        e = DVM_ERR_STATE;
        goto done;
    }
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, mint, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, quote ? quote : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, (int)input_prev);
    sqlite3_bind_int64(q, 5, (int64_t)time(NULL));
    if (sqlite3_step(q) != SQLITE_DONE) {
        e = fail(st, "insert op");
        goto done;
    }
    *op = sqlite3_last_insert_rowid(st->db);
    if (insert_inputs && n_in) {
        if (!(ip = prep(st, INSERT_PROOF))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        for (size_t i = 0; i < n_in && e == DVM_OK; i++)
            e = insert_proof(st, ip, mint, &inputs[i], input_prev, 0);
        if (e)
            goto done;
    }
    if ((e = move_locked(st, inputs, n_in, input_prev, DVM_WPROOF_PENDING, *op)))
        goto done;
    if (n_out) {
        if (!(o = prep(st, "INSERT INTO op_outputs(op, idx, amount, id, b_, secret, r, tag)"
                           " VALUES(?, ?, ?, ?, ?, ?, ?, ?)"))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        for (size_t i = 0; i < n_out; i++) {
            sqlite3_reset(o);
            sqlite3_bind_int64(o, 1, *op);
            sqlite3_bind_int64(o, 2, (int64_t)i);
            sqlite3_bind_int64(o, 3, (int64_t)outs[i].msg.amount);
            sqlite3_bind_text(o, 4, outs[i].msg.id, -1, SQLITE_STATIC);
            sqlite3_bind_blob(o, 5, outs[i].msg.B_, DVM_POINT_BYTES, SQLITE_STATIC);
            sqlite3_bind_text(o, 6, outs[i].secret, -1, SQLITE_STATIC);
            sqlite3_bind_blob(o, 7, outs[i].r, DVM_SCALAR_BYTES, SQLITE_STATIC);
            sqlite3_bind_int(o, 8, tags ? tags[i] : -1);
            if (sqlite3_step(o) != SQLITE_DONE) {
                e = fail(st, "insert output");
                goto done;
            }
        }
    }
done:
    sqlite3_finalize(q);
    sqlite3_finalize(o);
    sqlite3_finalize(ip);
    return end(st, e);
}

static dvm_err close_op_locked(dvm_wallet_store *st, int64_t op)
{
    sqlite3_stmt *d = prep(st, "DELETE FROM op_outputs WHERE op = ?");
    sqlite3_stmt *u = prep(st, "UPDATE ops SET open = 0 WHERE op = ? AND open = 1");
    dvm_err e = DVM_OK;
    if (!d || !u) {
        e = DVM_ERR_STATE;
    } else {
        sqlite3_bind_int64(d, 1, op);
        sqlite3_bind_int64(u, 1, op);
        if (sqlite3_step(d) != SQLITE_DONE || sqlite3_step(u) != SQLITE_DONE)
            e = fail(st, "close op");
        else if (sqlite3_changes(st->db) != 1)
            e = DVM_ERR_NOT_FOUND;
    }
    sqlite3_finalize(d);
    sqlite3_finalize(u);
    return e;
}

static dvm_err op_row(dvm_wallet_store *st, int64_t op, dvm_wallet_op *out)
{
    sqlite3_stmt *q = prep(st, "SELECT kind, mint, quote, input_prev FROM ops WHERE op = ? AND open = 1");
    if (!q)
        return DVM_ERR_STATE;
    sqlite3_bind_int64(q, 1, op);
    dvm_err e = DVM_OK;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->op = op;
        out->kind = (dvm_wop_kind)sqlite3_column_int(q, 0);
        snprintf(out->mint, sizeof out->mint, "%s", (const char *)sqlite3_column_text(q, 1));
        snprintf(out->quote, sizeof out->quote, "%s", (const char *)sqlite3_column_text(q, 2));
        out->input_prev = (dvm_wproof_state)sqlite3_column_int(q, 3);
    } else if (rc == SQLITE_DONE) {
        e = DVM_ERR_NOT_FOUND;
    } else {
        e = fail(st, "read op");
    }
    sqlite3_finalize(q);
    return e;
}

static dvm_err set_inputs_locked(dvm_wallet_store *st, int64_t op, int to)
{
    sqlite3_stmt *q = prep(st, "UPDATE proofs SET state = ? WHERE op = ? AND state = ?");
    if (!q)
        return DVM_ERR_STATE;
    sqlite3_bind_int(q, 1, to);
    sqlite3_bind_int64(q, 2, op);
    sqlite3_bind_int(q, 3, DVM_WPROOF_PENDING);
    dvm_err e = sqlite3_step(q) == SQLITE_DONE ? DVM_OK : fail(st, "update inputs");
    sqlite3_finalize(q);
    return e;
}

dvm_err dvm_wallet_store_op_finish(dvm_wallet_store *st, int64_t op, const dvm_proof *news,
                                   size_t n_new, const bool *reserved, dvm_wproof_state inputs_to)
{
    if (begin(st))
        return DVM_ERR_STATE;
    dvm_wallet_op row;
    dvm_err e = op_row(st, op, &row);
    sqlite3_stmt *ip = NULL;
    if (e)
        goto done;
    if ((e = set_inputs_locked(st, op, (int)inputs_to)))
        goto done;
    if (n_new) {
        if (!(ip = prep(st, INSERT_PROOF))) {
            e = DVM_ERR_STATE;
            goto done;
        }
        for (size_t i = 0; i < n_new && e == DVM_OK; i++)
            e = insert_proof(st, ip, row.mint, &news[i],
                             reserved && reserved[i] ? DVM_WPROOF_RESERVED : DVM_WPROOF_UNSPENT, 0);
        if (e)
            goto done;
    }
    e = close_op_locked(st, op);
done:
    sqlite3_finalize(ip);
    return end(st, e);
}

dvm_err dvm_wallet_store_op_revert(dvm_wallet_store *st, int64_t op, int inputs_to)
{
    if (begin(st))
        return DVM_ERR_STATE;
    dvm_wallet_op row;
    dvm_err e = op_row(st, op, &row);
    if (e == DVM_OK)
        e = set_inputs_locked(st, op, inputs_to >= 0 ? inputs_to : (int)row.input_prev);
    if (e == DVM_OK)
        e = close_op_locked(st, op);
    return end(st, e);
}

dvm_err dvm_wallet_store_ops_open(dvm_wallet_store *st, dvm_wallet_op **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = prep(st, "SELECT op FROM ops WHERE open = 1 ORDER BY op");
    if (!q)
        return DVM_ERR_STATE;
    int64_t ids[256];
    size_t k = 0;
    int rc;
    while (k < 256 && (rc = sqlite3_step(q)) == SQLITE_ROW)
        ids[k++] = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (k == 0)
        return DVM_OK;
    *out = calloc(k, sizeof **out);
    if (!*out)
        return DVM_ERR_NOMEM;
    for (size_t i = 0; i < k; i++) {
        dvm_err e = op_row(st, ids[i], &(*out)[i]);
        if (e) {
            free(*out);
            *out = NULL;
            return e;
        }
    }
    *n = k;
    return DVM_OK;
}

dvm_err dvm_wallet_store_op_inputs(dvm_wallet_store *st, int64_t op, dvm_proof **out, size_t *n)
{
    sqlite3_stmt *q = prep(st, "SELECT " PROOF_COLS " FROM proofs WHERE op = ? AND state = ?"
                               " ORDER BY rowid");
    if (!q) {
        *out = NULL;
        *n = 0;
        return DVM_ERR_STATE;
    }
    sqlite3_bind_int64(q, 1, op);
    sqlite3_bind_int(q, 2, DVM_WPROOF_PENDING);
    dvm_err e = collect(st, q, out, n);
    sqlite3_finalize(q);
    return e;
}

dvm_err dvm_wallet_store_op_outputs(dvm_wallet_store *st, int64_t op, dvm_wallet_output **out,
                                    int **tags, size_t *n)
{
    *out = NULL;
    *tags = NULL;
    *n = 0;
    sqlite3_stmt *c = prep(st, "SELECT COUNT(*) FROM op_outputs WHERE op = ?");
    if (!c)
        return DVM_ERR_STATE;
    sqlite3_bind_int64(c, 1, op);
    size_t k = 0;
    if (sqlite3_step(c) == SQLITE_ROW)
        k = (size_t)sqlite3_column_int64(c, 0);
    sqlite3_finalize(c);
    if (k == 0)
        return DVM_OK;
    sqlite3_stmt *q = prep(st, "SELECT amount, id, b_, secret, r, tag FROM op_outputs WHERE op = ?"
                               " ORDER BY idx");
    if (!q)
        return DVM_ERR_STATE;
    sqlite3_bind_int64(q, 1, op);
    *out = calloc(k, sizeof **out);
    *tags = calloc(k, sizeof **tags);
    if (!*out || !*tags) {
        sqlite3_finalize(q);
        free(*out);
        free(*tags);
        *out = NULL;
        *tags = NULL;
        return DVM_ERR_NOMEM;
    }
    size_t i = 0;
    while (i < k && sqlite3_step(q) == SQLITE_ROW) {
        dvm_wallet_output *w = &(*out)[i];
        w->msg.amount = (uint64_t)sqlite3_column_int64(q, 0);
        snprintf(w->msg.id, sizeof w->msg.id, "%s", (const char *)sqlite3_column_text(q, 1));
        if (sqlite3_column_bytes(q, 2) == DVM_POINT_BYTES)
            memcpy(w->msg.B_, sqlite3_column_blob(q, 2), DVM_POINT_BYTES);
        snprintf(w->secret, sizeof w->secret, "%s", (const char *)sqlite3_column_text(q, 3));
        if (sqlite3_column_bytes(q, 4) == DVM_SCALAR_BYTES)
            memcpy(w->r, sqlite3_column_blob(q, 4), DVM_SCALAR_BYTES);
        (*tags)[i] = sqlite3_column_int(q, 5);
        i++;
    }
    sqlite3_finalize(q);
    *n = i;
    return DVM_OK;
}

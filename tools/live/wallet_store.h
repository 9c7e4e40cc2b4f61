/* dvmstream — the HTTP wallet's proof store in SQLite.
 *
 * Proofs (NUT-00) with their DLEQ (NUT-12), each in one state, and the
 * operations in flight with their blinded outputs, so an interrupted swap,
 * mint, claim or melt never loses money: the outputs (secret, r, B_) of an
 * operation are committed BEFORE its request goes to the mint, and the
 * inputs move to PENDING in the same transaction. After a crash,
 * dvm_wallet_recover (wallet.h) finishes the operation from what the mint
 * says (NUT-07 checkstate, NUT-09 restore).
 *
 * Database: WAL, synchronous=FULL by default (dvm_wallet_store_set_sync);
 * every call below is one transaction.
 * Not thread-safe: one store per thread (SQLite itself allows several
 * processes on the same file).
 *
 * Errors: DVM_ERR_STATE for an SQLite failure (reason on stderr),
 * DVM_ERR_NOT_FOUND for an unknown operation, DVM_ERR_EXISTS for a proof
 * (secret) the store already holds, DVM_ERR_PROTO when proofs are not in the
 * state a transition expects.
 *
 * Outputs are core/cashu's dvm_wallet_output (BlindedMessage, secret, r),
 * each with an int tag of the caller's (e.g. the micro-token index it
 * belongs to, -1 for change). */
#ifndef DVM_LIVE_WALLET_STORE_H
#define DVM_LIVE_WALLET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/proof.h"
#include "cashu/wallet.h"
#include "common/err.h"

typedef enum dvm_wproof_state {
    DVM_WPROOF_UNSPENT = 0,  /* ours, spendable */
    DVM_WPROOF_PENDING = 1,  /* input of an operation in flight */
    DVM_WPROOF_RESERVED = 2, /* set aside to pay a peer, not yet handed over */
    DVM_WPROOF_SENT = 3,     /* handed to a peer (gone from our balance) */
    DVM_WPROOF_SPENT = 4,    /* spent at the mint by us */
    DVM_WPROOF_INCOMING = 5, /* received from a peer, not yet claimed */
    DVM_WPROOF_REJECTED = 6, /* incoming proofs the mint refused (forged, spent by others) */
} dvm_wproof_state;

/* Static lower-case name of a state ("unspent", ...), "?" if unknown. */
const char *dvm_wproof_state_name(dvm_wproof_state s);

typedef enum dvm_wop_kind {
    DVM_WOP_SWAP = 0,    /* own proofs -> new own proofs (split) */
    DVM_WOP_RECEIVE = 1, /* incoming proofs -> own proofs (claim) */
    DVM_WOP_MINT = 2,    /* paid mint quote -> own proofs */
    DVM_WOP_MELT = 3,    /* own proofs -> Lightning payment (+ change) */
} dvm_wop_kind;

/* An operation in flight, as read back for recovery. */
typedef struct dvm_wallet_op {
    int64_t op;
    dvm_wop_kind kind;
    char mint[DVM_MINT_URL_MAX + 1];
    char quote[65];                  /* mint/melt quote id, "" otherwise */
    dvm_wproof_state input_prev;     /* state the inputs return to on revert */
} dvm_wallet_op;

typedef struct dvm_wallet_store dvm_wallet_store;

/* Open or create the store at path (WAL, synchronous=FULL, 10 s busy
 * timeout, schema created if missing); close with dvm_wallet_store_close
 * (NULL is fine). DVM_ERR_STATE with a reason in err when the file cannot
 * be opened or initialised, DVM_ERR_NOMEM; *out is NULL on error. */
dvm_err dvm_wallet_store_open(const char *path, dvm_wallet_store **out, char *err, size_t errlen);
void dvm_wallet_store_close(dvm_wallet_store *st);

/* Insert n proofs of `mint` in `state`. DVM_ERR_EXISTS (nothing written) if
 * one of the secrets is already stored. */
dvm_err dvm_wallet_store_add(dvm_wallet_store *st, const char *mint, const dvm_proof *p, size_t n,
                             dvm_wproof_state state);

/* Insert n_groups groups of proofs (groups[g][0..counts[g])) of `mint` in
 * `state`, all in ONE transaction (one commit, one fsync under
 * synchronous=FULL). Each group is all-or-nothing on its own (a SAVEPOINT):
 * results[g] gets DVM_OK, or DVM_ERR_EXISTS when one of its secrets is
 * already stored (or in an earlier group of the same call); that group is
 * not written and the others are. On a database failure the whole call is
 * rolled back, every results[g] is DVM_ERR_STATE and so is the return
 * value; otherwise it returns DVM_OK. */
dvm_err dvm_wallet_store_add_groups(dvm_wallet_store *st, const char *mint,
                                    const dvm_proof *const *groups, const size_t *counts,
                                    size_t n_groups, dvm_wproof_state state, dvm_err *results);

/* PRAGMA synchronous for this connection: FULL (true; the default set by
 * open: a commit is on disk when it returns, also across power loss) or
 * NORMAL (false; in WAL mode a commit survives a crash of the process but
 * the last commits may be lost on power loss or an OS crash). */
dvm_err dvm_wallet_store_set_sync(dvm_wallet_store *st, bool full);

/* All proofs of `mint` in `state` (oldest first) into a new malloc'd array
 * (*out, *n; free() it; NULL when none). */
dvm_err dvm_wallet_store_list(dvm_wallet_store *st, const char *mint, dvm_wproof_state state,
                              dvm_proof **out, size_t *n);

/* Sum of the amounts of `mint`'s proofs in `state` (sats). */
dvm_err dvm_wallet_store_sum(dvm_wallet_store *st, const char *mint, dvm_wproof_state state,
                             uint64_t *sats);

/* How many of the proofs with the given secrets p[0..n) are stored in
 * `state` (*count, 0..n; a proof not stored counts as not). Reads only.
 * DVM_ERR_STATE if the database fails. */
dvm_err dvm_wallet_store_count_in(dvm_wallet_store *st, const dvm_proof *p, size_t n,
                                  dvm_wproof_state state, size_t *count);

/* Move the proofs with the given secrets from `from` to `to`. DVM_ERR_PROTO
 * (nothing changed) unless every one is stored in `from`. */
dvm_err dvm_wallet_store_move(dvm_wallet_store *st, const dvm_proof *p, size_t n,
                              dvm_wproof_state from, dvm_wproof_state to);

/* Begin an operation, in one transaction: record it, record its outputs,
 * and move its inputs from `input_prev` to PENDING (inputs in `insert_inputs`
 * mode are first inserted in state input_prev: a token received right now).
 * *op gets the operation id. DVM_ERR_PROTO if an input is not in
 * input_prev; DVM_ERR_EXISTS if an inserted input is already stored. */
dvm_err dvm_wallet_store_op_begin(dvm_wallet_store *st, dvm_wop_kind kind, const char *mint,
                                  const char *quote, const dvm_proof *inputs, size_t n_in,
                                  dvm_wproof_state input_prev, bool insert_inputs,
                                  const dvm_wallet_output *outs, const int *tags, size_t n_out,
                                  int64_t *op);

/* Finish an operation that the mint executed, in one transaction: insert
 * the n_new proofs (UNSPENT, or RESERVED where reserved[i] is true; reserved
 * may be NULL), move the op's PENDING inputs to `inputs_to` (SPENT, or
 * REJECTED), drop its outputs, close it. */
dvm_err dvm_wallet_store_op_finish(dvm_wallet_store *st, int64_t op, const dvm_proof *news,
                                   size_t n_new, const bool *reserved, dvm_wproof_state inputs_to);

/* Abandon an operation the mint did NOT execute: inputs go back to the
 * op's input_prev state (or `inputs_to` if >= 0), outputs dropped, op
 * closed. */
dvm_err dvm_wallet_store_op_revert(dvm_wallet_store *st, int64_t op, int inputs_to);

/* Open operations (oldest first) into a malloc'd array (free() it). */
dvm_err dvm_wallet_store_ops_open(dvm_wallet_store *st, dvm_wallet_op **out, size_t *n);

/* Inputs (PENDING proofs) and recorded outputs of operation `op`, as
 * malloc'd arrays (free() them). */
dvm_err dvm_wallet_store_op_inputs(dvm_wallet_store *st, int64_t op, dvm_proof **out, size_t *n);
dvm_err dvm_wallet_store_op_outputs(dvm_wallet_store *st, int64_t op, dvm_wallet_output **out,
                                    int **tags, size_t *n);

#endif

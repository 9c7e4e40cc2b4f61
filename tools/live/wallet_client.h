/* dvmstream — the HTTP Cashu wallet: core/cashu's wallet logic + libcurl +
 * an SQLite proof store. Used by `dvm wallet`, the live customer (fund,
 * split into micro-tokens, pay) and the live agent (commit received tokens,
 * claim them in batches, retry after a restart).
 *
 * One client talks to ONE mint (its URL) and keeps that mint's proofs in
 * the database (several clients, for several mints, may share one file).
 * A client is not thread-safe and its calls block (HTTP with a timeout):
 * use one client per thread, or call it from a worker thread of your event
 * loop. Several processes may open the same database (SQLite WAL).
 *
 * Money is never lost (DESIGN.md): every operation that sends proofs or
 * blinded outputs to the mint first commits, in one SQLite transaction,
 * its inputs as PENDING and its outputs (secret, r, B_); only then does the
 * request go out. If the reply is lost (crash, timeout, mint down), the
 * operation stays open and dvm_wallet_client_recover finishes it later from
 * what the mint says: NUT-07 checkstate (were the inputs spent?) and NUT-09
 * restore (re-fetch the signatures on our outputs).
 *
 * Typical use: a provider opens its client, calls _recover (finish what a
 * crash interrupted) and _claim_incoming (claim tokens committed but not
 * yet claimed) at startup; on each payment _add_incoming (or, for several
 * payments verified in one loop turn, _add_incoming_many: one commit)
 * before payment_ack; at job end _claim_incoming. _set_sync chooses how
 * durable those commits are (FULL by default). A customer opens, calls _recover
 * and _release_reserved, _mint if short, _split into micro-tokens after the
 * offer, _mark_sent per token paid, _release for the ones left over.
 *
 * Specs: NUT-01/02 keysets, NUT-03 swap, NUT-04 mint (bolt11), NUT-05 melt,
 * NUT-07 checkstate, NUT-09 restore, NUT-12 DLEQ (required on every
 * signature the mint returns; kept in the proofs with r, so receivers can
 * verify offline).
 *
 * Errors (every function returns a dvm_err; the mint's detail and NUT code
 * of the last failure are in dvm_wallet_client_last_error/_code):
 *   DVM_ERR_AGAIN     mint unreachable or reply lost: retry later; an
 *                     operation already started stays open (recover);
 *   DVM_ERR_SPENT     the mint says the proofs are spent (11001);
 *   DVM_ERR_LIMIT     not enough balance for the amount plus fees;
 *   DVM_ERR_PROTO     the mint refused for another reason (see the code);
 *   DVM_ERR_CRYPTO    a signature's DLEQ did not verify;
 *   DVM_ERR_INVALID   bad argument (zero amount, token of another mint or
 *                     unit, malformed reply);
 *   DVM_ERR_STATE     the database failed. */
#ifndef DVM_LIVE_WALLET_CLIENT_H
#define DVM_LIVE_WALLET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/keyset.h"
#include "cashu/mint.h"
#include "cashu/proof.h"
#include "common/err.h"

typedef struct dvm_wallet_client dvm_wallet_client;

/* Balances of this mint's proofs in the store, in sats. */
typedef struct dvm_wallet_balance {
    uint64_t unspent;   /* spendable */
    uint64_t reserved;  /* split off into micro-tokens, not handed over yet */
    uint64_t pending;   /* inputs of operations in flight */
    uint64_t incoming;  /* received from peers, not claimed yet */
} dvm_wallet_balance;

/* Open the wallet database `db_path` (created if absent) for the mint at
 * `mint_url`. Does not contact the mint (keysets load on first use).
 * timeout_ms bounds each HTTP request (0 = 30000). On success *out owns a
 * client (free with dvm_wallet_client_close); on failure *out is NULL and
 * err[0..errlen) holds a one-line reason: DVM_ERR_INVALID (bad mint URL),
 * DVM_ERR_NOMEM, DVM_ERR_STATE (libsodium, or the database cannot be
 * opened or migrated). */
dvm_err dvm_wallet_client_open(const char *mint_url, const char *db_path, long timeout_ms,
                               dvm_wallet_client **out, char *err, size_t errlen);

/* Close the database and free the client and everything it loaded
 * (keysets: pointers from dvm_wallet_client_keysets become invalid). Every
 * commit already returned is durable (see _set_sync); nothing is sent to
 * the mint. Operations left open stay open for _recover. NULL is ignored. */
void dvm_wallet_client_close(dvm_wallet_client *w);

/* The mint URL (no trailing '/'). */
const char *dvm_wallet_client_mint_url(const dvm_wallet_client *w);

/* One-line description of the last failure, and the mint's NUT error code
 * (0 if none). */
const char *dvm_wallet_client_last_error(const dvm_wallet_client *w);
long dvm_wallet_client_last_code(const dvm_wallet_client *w);

/* GET /v1/keysets and /v1/keys/{id} for every keyset of unit sat; keyset
 * ids are checked against their keys. Called lazily by the operations
 * below; call it to refresh. */
dvm_err dvm_wallet_client_load_keysets(dvm_wallet_client *w);

/* The loaded keysets (borrowed, valid until the next load), for a payment
 * policy (cashu/policy.h dvm_pay_policy_add_keyset). Loads if needed. */
dvm_err dvm_wallet_client_keysets(dvm_wallet_client *w, const dvm_keyset **ks, size_t *n);

/* Sums, in sats, of this mint's proofs in the store by state, into *b
 * (zeroed first). Reads the database only (no request to the mint; the
 * sums are face values, before any input fees). DVM_ERR_STATE (with
 * _last_error) if the database cannot be read. */
dvm_err dvm_wallet_client_balance(dvm_wallet_client *w, dvm_wallet_balance *b);

/* NUT-04: quote `amount` sats, poll the quote until PAID (at most
 * timeout_ms; the fake backend pays at once), mint. The new proofs are
 * UNSPENT. *minted (may be NULL) gets the sats minted. */
dvm_err dvm_wallet_client_mint(dvm_wallet_client *w, uint64_t amount, uint64_t timeout_ms,
                               uint64_t *minted);

/* Most inputs, and most outputs, the wallet puts in one request to this
 * mint: the mint's NUT-06 `max_array_length` (optional top-level field of
 * GET /v1/info, nuts#425) when it publishes one in 64..999, else
 * DVM_WALLET_MAX_OUTPUTS (1000, the common
 * default of mints, also `dvm mint`'s --max-inputs/--max-outputs). Read
 * with the keysets (1000 until they are loaded). */
size_t dvm_wallet_client_max_array(const dvm_wallet_client *w);

/* n_tokens micro-tokens of exactly token_sats each, for any n_tokens the
 * UNSPENT balance covers (plus input fees). The tokens' proofs are
 * RESERVED until dvm_wallet_client_mark_sent or _release. *tokens gets a
 * malloc'd array of n_tokens dvm_token (mint, unit "sat", proofs with DLEQ);
 * free with dvm_wallet_tokens_free.
 *
 * How: first UNSPENT proofs already of the right shape are reused without
 * a swap (a proof worth exactly token_sats, then groups of proofs forming
 * token_sats's binary split, e.g. 8+2 for 10: a released token). The rest
 * comes from NUT-03 swaps, as many as needed, each within
 * dvm_wallet_client_max_array inputs and outputs (a token costs
 * popcount(token_sats) outputs; change takes up to ~53 more): e.g. 500
 * tokens of 10 sats at a 1000-output mint take two swaps. Each swap is its
 * own durable operation (inputs PENDING and outputs recorded before the
 * request; see above). A wallet so fragmented that one token needs more
 * than max_array inputs first consolidates its smallest proofs (a swap of
 * max_array inputs into their binary split).
 *
 * All or nothing for the caller: if a swap fails part way (mint down:
 * DVM_ERR_AGAIN, ...), the tokens already made go back to UNSPENT, the
 * failed swap's operation stays open if its reply was lost
 * (dvm_wallet_client_recover finishes it), and the error is returned with
 * *tokens NULL; nothing is lost. DVM_ERR_LIMIT if the balance does not
 * cover n_tokens * token_sats plus the input fees (checked first for the
 * face value, nothing changed), DVM_ERR_INVALID for token_sats or
 * n_tokens 0 or a product past 2^53-1. */
dvm_err dvm_wallet_client_split(dvm_wallet_client *w, uint64_t token_sats, size_t n_tokens,
                                dvm_token **tokens);

/* Called by dvm_wallet_client_split after each swap that made tokens
 * (not after reusing proofs, not after a consolidation): `done` of
 * `n_tokens` made so far, reused ones included. For progress
 * lines (and tests, which stop the mint between two swaps). fn NULL turns
 * it off. */
typedef void (*dvm_wallet_split_progress_fn)(void *ctx, size_t done, size_t n_tokens);
void dvm_wallet_client_on_split_progress(dvm_wallet_client *w, dvm_wallet_split_progress_fn fn,
                                         void *ctx);

/* Free the array of n tokens from dvm_wallet_client_split (each token's
 * proofs and strings, then the array). Only memory: the proofs' states in
 * the store do not change (mark them sent or release them first). NULL is
 * ignored. */
void dvm_wallet_tokens_free(dvm_token *tokens, size_t n);

/* RESERVED -> SENT (handed to a peer) for t's proofs. */
dvm_err dvm_wallet_client_mark_sent(dvm_wallet_client *w, const dvm_token *t);

/* INCOMING -> REJECTED for t's proofs: a token a provider committed before
 * its checks finished (committing while the DLEQ proofs are verified) that
 * the checks then refused; REJECTED proofs are never claimed. DVM_ERR_PROTO
 * (nothing changed) unless every proof is INCOMING (e.g. a claim took them
 * meanwhile). */
dvm_err dvm_wallet_client_reject_incoming(dvm_wallet_client *w, const dvm_token *t);

/* What became of t (a token committed INCOMING) once it is no longer
 * INCOMING (dvm_wallet_client_reject_incoming: DVM_ERR_PROTO): how many of
 * its proofs are SPENT here (*spent: a claim of ours swapped them into this
 * wallet, the mint accepted) and how many PENDING (*pending: inputs of a
 * claim not finished - in flight on another connection, or left open for
 * dvm_wallet_client_recover when the mint did not answer). The others are
 * REJECTED (the mint refused them) or not stored. Reads only.
 * DVM_ERR_STATE if the database fails. */
dvm_err dvm_wallet_client_claim_progress(dvm_wallet_client *w, const dvm_token *t, size_t *spent,
                                         size_t *pending);

/* RESERVED -> UNSPENT for t's proofs (a micro-token that was not needed). */
dvm_err dvm_wallet_client_release(dvm_wallet_client *w, const dvm_token *t);

/* Every RESERVED proof back to UNSPENT (a customer starting up after a
 * crash); *sats (may be NULL) gets the value released. */
dvm_err dvm_wallet_client_release_reserved(dvm_wallet_client *w, uint64_t *sats);

/* split(amount, 1) + mark_sent: *out gets one token worth exactly amount
 * (free with dvm_token_free). */
dvm_err dvm_wallet_client_send(dvm_wallet_client *w, uint64_t amount, dvm_token *out);

/* Commit a token received from a peer as INCOMING (one transaction, as
 * durable as dvm_wallet_client_set_sync says; a provider calls this before
 * payment_ack). The token must name this client's mint and unit
 * sat (DVM_ERR_INVALID). A proof the store already holds: DVM_ERR_EXISTS
 * (nothing written). */
dvm_err dvm_wallet_client_add_incoming(dvm_wallet_client *w, const dvm_token *t);

/* Group commit: dvm_wallet_client_add_incoming for tokens[0..n) in ONE
 * SQLite transaction (one fsync under DVM_WALLET_SYNC_FULL instead of n),
 * for a provider that verified several payments in one turn of its loop
 * and acks them after this returns. Each token is all-or-nothing on its
 * own: results[i] (results may be NULL) gets DVM_OK (committed),
 * DVM_ERR_INVALID (other mint or unit, no proofs: not written) or
 * DVM_ERR_EXISTS (a proof already stored, also by an earlier token of the
 * same call: not written); the others are committed. Returns DVM_OK when
 * every token was committed; DVM_ERR_EXISTS or DVM_ERR_INVALID when some
 * were refused (the rest ARE committed: ack only tokens with results[i]
 * == DVM_OK); DVM_ERR_STATE if the database failed (nothing committed,
 * every results[i] DVM_ERR_STATE). */
dvm_err dvm_wallet_client_add_incoming_many(dvm_wallet_client *w, const dvm_token *tokens,
                                            size_t n, dvm_err *results);

/* Durability of the wallet database's commits (SQLite WAL mode):
 *
 * DVM_WALLET_SYNC_FULL (the default; PRAGMA synchronous=FULL): every
 *   commit is fsync'd before the call returns, so it survives a crash of
 *   the process, kill -9, an OS crash and power loss. Costs one fsync per
 *   commit (about 8 ms each on a VM disk: ~120 commits/s).
 * DVM_WALLET_SYNC_NORMAL (PRAGMA synchronous=NORMAL): a commit is written
 *   to the WAL file (in the OS page cache) before the call returns, and the
 *   WAL is fsync'd only at checkpoints. A commit survives a crash or kill
 *   -9 of the process (the OS still has it; tested), but the last commits
 *   may be lost on power loss or an OS crash (the database stays
 *   consistent, it just rolls back to an earlier commit). For a provider
 *   this means tokens acked just before a power cut may be gone: it loses
 *   at most those payments, the customer none.
 *
 * Applies to this client's connection until changed (set it right after
 * open). DVM_ERR_INVALID for another mode, DVM_ERR_STATE if SQLite
 * refuses. */
typedef enum dvm_wallet_sync {
    DVM_WALLET_SYNC_FULL = 0,
    DVM_WALLET_SYNC_NORMAL = 1,
} dvm_wallet_sync;

/* Set the commit durability of this client (see dvm_wallet_sync above):
 * DVM_OK, DVM_ERR_INVALID for an unknown mode, DVM_ERR_STATE if SQLite
 * refuses the PRAGMA. */
dvm_err dvm_wallet_client_set_sync(dvm_wallet_client *w, dvm_wallet_sync mode);

/* Claim every INCOMING proof of this mint by swapping it into new proofs of
 * ours (NUT-03, in batches of at most 200 inputs). Proofs the mint refuses
 * (spent by someone else: 11001, forged: 10001) become REJECTED and are
 * counted in *rejected (sats); a batch the mint refuses as a whole is
 * retried proof by proof so one bad proof does not block the rest.
 * *claimed gets the sats added to the balance (after fees). Both may be
 * NULL. DVM_ERR_AGAIN if the mint is unreachable (nothing lost: the
 * proofs stay INCOMING or their op stays open for recover). */
dvm_err dvm_wallet_client_claim_incoming(dvm_wallet_client *w, uint64_t *claimed,
                                         uint64_t *rejected);

/* Receive a token now: add_incoming + claim of just its proofs (one swap).
 * *received (may be NULL) gets the sats credited (after fees). If the token
 * was already received (its proofs are known), the mint is asked:
 * DVM_ERR_SPENT with code 11001 when it says they are spent. If the mint
 * refuses the swap, proofs it reports spent (or a single bad proof) become
 * REJECTED and any others stay INCOMING for a later claim_incoming. */
dvm_err dvm_wallet_client_receive(dvm_wallet_client *w, const dvm_token *t, uint64_t *received);

/* NUT-07 states of proofs (any proofs, e.g. a token's): states[i] for
 * p[i]. */
dvm_err dvm_wallet_client_check(dvm_wallet_client *w, const dvm_proof *p, size_t n,
                                dvm_proof_state *states);

/* NUT-05: melt quote for a bolt11 invoice, then pay it with UNSPENT proofs
 * (swapping first for exact change). *paid (may be NULL) gets the invoice
 * amount. */
dvm_err dvm_wallet_client_melt(dvm_wallet_client *w, const char *invoice, uint64_t *paid);

/* Finish operations left open by a crash or a lost reply: for each, ask
 * the mint (checkstate, quote state, restore) and complete it (new proofs
 * stored) or revert it (inputs back). *finished (may be NULL) counts the
 * operations closed. DVM_ERR_AGAIN if the mint is unreachable (they stay
 * open). */
dvm_err dvm_wallet_client_recover(dvm_wallet_client *w, size_t *finished);

/* Number of open operations (for tests and status lines). */
dvm_err dvm_wallet_client_open_ops(dvm_wallet_client *w, size_t *n);

#endif

/* dvmstream — Cashu mint logic, pure (NUT-01..07, NUT-12).
 *
 * The logic of a mint without I/O: keysets derived from a seed, signing
 * BlindedMessages with DLEQ proofs, verifying Proofs, validating swaps,
 * mint and melt quotes with a fake Lightning backend whose invoices are
 * paid at once, checkstate. JSON is not used here: tools/mint maps HTTP
 * bodies to these structs with cashu/nut_json.h and cashu/mint_json.h.
 *
 * Storage goes through a vtable (dvm_mint_store) the driver implements:
 * SQLite in tools/mint, memory in the simulator and tests
 * (cashu/mint_memstore.h). Every state change is ONE call to store->commit,
 * which the store must make atomic (one SQLite transaction): it checks the
 * preconditions (no input Y spent or pending, no output B_ signed, the quote
 * in the expected state) and applies all changes, or applies none. The
 * logic signs outputs BEFORE committing, so a failed commit loses nothing
 * and a successful one is always answered with signatures.
 *
 * Errors: functions return a dvm_err and fill a dvm_mint_error with the
 * NUT error code (cashubtc/nuts error_codes.md, copy in
 * fixtures/vectors/cashu) and a detail string, what HTTP answers as
 * 400 {"detail": ..., "code": ...}.
 *
 * Time: now_ms (unix milliseconds) comes in; quote expiries are unix
 * seconds as in NUT-04/05. Randomness (quote ids, fake invoices, preimages)
 * comes from the dvm_rng given to dvm_mint_new. A dvm_mint is not
 * thread-safe: serialise calls (the store's transactions still make
 * concurrent mints over one database safe). */
#ifndef DVM_CASHU_MINT_H
#define DVM_CASHU_MINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/proof.h"
#include "common/err.h"
#include "common/rng.h"

/* NUT error codes (error_codes.md). */
enum {
    DVM_NUT_OK = 0,
    DVM_NUT_PROOF_VERIFICATION_FAILED = 10001,
    DVM_NUT_PROOFS_SPENT = 11001,
    DVM_NUT_PROOFS_PENDING = 11002,
    DVM_NUT_OUTPUTS_SIGNED = 11003,
    DVM_NUT_OUTPUTS_PENDING = 11004,
    DVM_NUT_UNBALANCED = 11005,
    DVM_NUT_AMOUNT_OUT_OF_RANGE = 11006,
    DVM_NUT_DUPLICATE_INPUTS = 11007,
    DVM_NUT_DUPLICATE_OUTPUTS = 11008,
    DVM_NUT_MULTIPLE_UNITS = 11009,
    DVM_NUT_UNIT_MISMATCH = 11010,
    DVM_NUT_AMOUNTLESS_INVOICE = 11011,
    DVM_NUT_AMOUNT_NOT_INVOICE = 11012,
    DVM_NUT_UNIT_UNSUPPORTED = 11013,
    DVM_NUT_MAX_INPUTS = 11014,
    DVM_NUT_MAX_OUTPUTS = 11015,
    DVM_NUT_KEYSET_UNKNOWN = 12001,
    DVM_NUT_KEYSET_INACTIVE = 12002,
    DVM_NUT_QUOTE_NOT_PAID = 20001,
    DVM_NUT_QUOTE_ISSUED = 20002,
    DVM_NUT_MINTING_DISABLED = 20003,
    DVM_NUT_LIGHTNING_FAILED = 20004,
    DVM_NUT_QUOTE_PENDING = 20005,
    DVM_NUT_INVOICE_PAID = 20006,
    DVM_NUT_QUOTE_EXPIRED = 20007,
    /* Not in the table: a quote id the mint does not know (nutshell answers
     * such requests with a generic error too). */
    DVM_NUT_QUOTE_UNKNOWN = 20000,
    /* Not in the table: a malformed request or an internal failure. */
    DVM_NUT_GENERIC = 10000
};

typedef struct dvm_mint_error {
    int code;          /* DVM_NUT_*; 0 when no error */
    char detail[200];  /* English, one line */
} dvm_mint_error;

/* The English description of a NUT error code from the table (static
 * string; "unknown error" for codes not listed). */
const char *dvm_nut_error_text(int code);

/* NUT-07 proof states. */
typedef enum dvm_proof_state {
    DVM_PROOF_UNSPENT = 0,
    DVM_PROOF_PENDING = 1,
    DVM_PROOF_SPENT = 2
} dvm_proof_state;

/* "UNSPENT" / "PENDING" / "SPENT". */
const char *dvm_proof_state_name(dvm_proof_state s);

#define DVM_QUOTE_ID_MAX 64   /* chars of a quote id (ours: 32 hex) */
#define DVM_BOLT11_MAX 2048   /* chars of a bolt11 invoice */

/* NUT-04 mint quote states. */
typedef enum dvm_mint_quote_state {
    DVM_MINT_QUOTE_UNPAID = 0,
    DVM_MINT_QUOTE_PAID = 1,
    DVM_MINT_QUOTE_ISSUED = 2
} dvm_mint_quote_state;

/* NUT-05 melt quote states. */
typedef enum dvm_melt_quote_state {
    DVM_MELT_QUOTE_UNPAID = 0,
    DVM_MELT_QUOTE_PENDING = 1,
    DVM_MELT_QUOTE_PAID = 2
} dvm_melt_quote_state;

/* The NUT-04 / NUT-05 JSON name of a quote state (static strings):
 * "UNPAID" | "PAID" | "ISSUED" for mint quotes, "UNPAID" | "PENDING" |
 * "PAID" for melt quotes; a value outside the enum reads "UNPAID". */
const char *dvm_mint_quote_state_name(dvm_mint_quote_state s);
const char *dvm_melt_quote_state_name(dvm_melt_quote_state s);

/* NUT-04 mint quote (PostMintQuoteBolt11Response). */
typedef struct dvm_mint_quote {
    char quote[DVM_QUOTE_ID_MAX + 1];
    char request[DVM_BOLT11_MAX + 1]; /* the (fake) bolt11 invoice to pay */
    uint64_t amount;                  /* sats */
    char unit[DVM_UNIT_MAX + 1];
    dvm_mint_quote_state state;
    uint64_t expiry;                  /* unix seconds */
} dvm_mint_quote;

/* NUT-05 melt quote (PostMeltQuoteBolt11Response). */
typedef struct dvm_melt_quote {
    char quote[DVM_QUOTE_ID_MAX + 1];
    char request[DVM_BOLT11_MAX + 1]; /* the invoice the mint pays */
    uint64_t amount;                  /* sats the invoice asks for */
    uint64_t fee_reserve;             /* sats; 0 with the fake backend */
    char unit[DVM_UNIT_MAX + 1];
    dvm_melt_quote_state state;
    uint64_t expiry;                  /* unix seconds */
    char payment_preimage[65];        /* hex, "" until PAID */
} dvm_melt_quote;

/* ---- storage vtable ------------------------------------------------------ */

typedef enum dvm_quote_kind {
    DVM_QUOTE_NONE = 0,
    DVM_QUOTE_MINT = 1,
    DVM_QUOTE_MELT = 2
} dvm_quote_kind;

/* One atomic state change. All-or-nothing: the store first checks
 *  - every Y in Ys is unknown (UNSPENT) — else conflict SPENT or PENDING,
 *    unless `settle` is set (then every Y must be PENDING, see below);
 *  - every B_ in B_s was never signed — else conflict OUTPUT_SIGNED;
 *  - if quote_kind != NONE, the quote `quote_id` exists and is in state
 *    quote_from — else conflict QUOTE_STATE with *found_state set;
 * then records Ys with state Ys_state, B_s (with their signatures) as
 * signed, and the quote in state quote_to (melt: also payment_preimage if
 * non-NULL). With `settle` set, the Ys must all be PENDING and move to
 * Ys_state: SPENT, or UNSPENT (= forget them) to release a failed melt. */
typedef struct dvm_mint_commit {
    const uint8_t (*Ys)[DVM_POINT_BYTES];
    size_t n_Ys;
    dvm_proof_state Ys_state;  /* SPENT (swap, melt) or PENDING (melt start) */
    bool settle;               /* Ys are PENDING and move to Ys_state */
    const uint8_t (*B_s)[DVM_POINT_BYTES];
    const dvm_blind_signature *sigs; /* n_B_s signatures for B_s (may be stored for NUT-09) */
    size_t n_B_s;
    dvm_quote_kind quote_kind;
    const char *quote_id;
    int quote_from;            /* dvm_mint_quote_state or dvm_melt_quote_state */
    int quote_to;
    const char *payment_preimage; /* melt quote PAID: hex preimage, else NULL */
} dvm_mint_commit;

typedef enum dvm_mint_conflict {
    DVM_CONFLICT_NONE = 0,
    DVM_CONFLICT_SPENT,         /* an input Y is SPENT */
    DVM_CONFLICT_PENDING,       /* an input Y is PENDING */
    DVM_CONFLICT_NOT_PENDING,   /* settle: an input Y is not PENDING */
    DVM_CONFLICT_OUTPUT_SIGNED, /* an output B_ was signed before */
    DVM_CONFLICT_QUOTE_STATE,   /* quote missing or not in quote_from */
} dvm_mint_conflict;

typedef struct dvm_mint_store {
    void *ctx;
    /* Apply c atomically (see dvm_mint_commit). DVM_OK when applied;
     * DVM_ERR_EXISTS with *conflict (and *conflict_index: index into Ys or
     * B_s; *found_state: the quote's state, -1 if missing) when a
     * precondition fails and nothing changed; any other dvm_err for a
     * storage failure (nothing changed). */
    dvm_err (*commit)(void *ctx, const dvm_mint_commit *c, dvm_mint_conflict *conflict,
                      size_t *conflict_index, int *found_state);
    /* states[i] = state of Ys[i] (UNSPENT if unknown). */
    dvm_err (*proof_states)(void *ctx, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n,
                            dvm_proof_state *states);
    /* Insert a new quote (ids are unique; DVM_ERR_EXISTS if taken). */
    dvm_err (*put_mint_quote)(void *ctx, const dvm_mint_quote *q);
    dvm_err (*put_melt_quote)(void *ctx, const dvm_melt_quote *q);
    /* Look a quote up; DVM_ERR_NOT_FOUND if unknown. */
    dvm_err (*get_mint_quote)(void *ctx, const char *id, dvm_mint_quote *out);
    dvm_err (*get_melt_quote)(void *ctx, const char *id, dvm_melt_quote *out);
} dvm_mint_store;

/* ---- configuration ------------------------------------------------------- */

typedef struct dvm_mint_config {
    uint8_t seed[32];         /* keyset seed: keep secret, keep forever */
    uint32_t n_keysets;       /* keysets 0..n-1 are derived; the last is active,
                                 earlier ones inactive (rotation). 0 means 1. */
    unsigned max_order;       /* keys for 2^0..2^(max_order-1); 0 means 64 */
    uint64_t input_fee_ppk;   /* NUT-02 fee of the active keyset */
    int id_version;           /* 0: keyset ids "00..." (default), 1: "01..." */
    size_t max_inputs;        /* per request; 0 means DVM_MINT_DEFAULT_MAX_INPUTS */
    size_t max_outputs;       /* per request; 0 means DVM_MINT_DEFAULT_MAX_OUTPUTS */
    uint64_t mint_max_sats;   /* largest mint quote; 0 means 2^40 */
    uint64_t melt_max_sats;   /* largest melt quote; 0 means 2^40 */
    uint32_t quote_ttl_s;     /* quote expiry after creation; 0 means 3600 */
    bool mint_quotes_unpaid;  /* false (default): fake backend marks mint
                                 quotes PAID at creation (testnut-like);
                                 true: they stay UNPAID until
                                 dvm_mint_fake_pay_quote. */
} dvm_mint_config;

#define DVM_MINT_DEFAULT_MAX_INPUTS 1000
#define DVM_MINT_DEFAULT_MAX_OUTPUTS 1000

typedef struct dvm_mint dvm_mint;

/* Create a mint: derives cfg->n_keysets keysets (unit "sat") from the seed
 * (dvm_keyset_derive; index i, the last active with cfg->input_fee_ppk,
 * earlier ones inactive with fee 0). store and rng are borrowed and must
 * outlive the mint; the dvm_cashu_ctx is created inside.
 * DVM_ERR_INVALID on a bad config, DVM_ERR_NOMEM. */
dvm_err dvm_mint_new(dvm_mint **out, const dvm_mint_config *cfg, const dvm_mint_store *store,
                     const dvm_rng *rng);
/* Wipe the private keys and release the mint (NULL is fine); the store
 * and rng are not touched. */
void dvm_mint_free(dvm_mint *m);

/* Keysets (public halves), for GET /v1/keys, /v1/keysets. */
size_t dvm_mint_keyset_count(const dvm_mint *m);
const dvm_keyset *dvm_mint_keyset(const dvm_mint *m, size_t i);
/* The keyset with this id, or NULL. */
const dvm_keyset *dvm_mint_keyset_by_id(const dvm_mint *m, const char *id);
/* The active keyset for a unit, or NULL. */
const dvm_keyset *dvm_mint_active_keyset(const dvm_mint *m, const char *unit);
/* The crypto context the mint uses (borrowed). */
const dvm_cashu_ctx *dvm_mint_ctx(const dvm_mint *m);

/* Fee (sats) the mint charges for spending ins[0..n) (NUT-02); error
 * 12001 if an input's keyset is unknown. */
dvm_err dvm_mint_fee(const dvm_mint *m, const dvm_proof *ins, size_t n, uint64_t *fee,
                     dvm_mint_error *err);

/* Verify proofs without changing state: known keyset (12001), amount a key
 * of it (10001), C == k*Y (10001), no duplicate Y (11007), count limit
 * (11014). Secrets in the NUT-10 form (starting with '[': P2PK, HTLC
 * spending conditions) are refused with 10001, as this mint does not
 * implement NUT-11/14. If Ys_out is non-NULL it receives the n Ys. */
dvm_err dvm_mint_verify_proofs(const dvm_mint *m, const dvm_proof *ins, size_t n,
                               uint8_t (*Ys_out)[DVM_POINT_BYTES], dvm_mint_error *err);

/* NUT-03 swap. Checks, in order: counts (11014/11015; at least one input
 * and one output), outputs (active keyset of unit sat: 12001/12002/11013,
 * amount a power of two with a key: 11006, duplicate B_: 11008), inputs
 * (dvm_mint_verify_proofs; units: 11010), balance
 * sum(inputs) - fee == sum(outputs) (11005), then signs every output with
 * a DLEQ and commits (11001 spent, 11002 pending, 11003 output signed).
 * sigs[0..n_out) receives the BlindSignatures, in output order. */
dvm_err dvm_mint_swap(dvm_mint *m, const dvm_proof *ins, size_t n_in,
                      const dvm_blinded_message *outs, size_t n_out, dvm_blind_signature *sigs,
                      dvm_mint_error *err);

/* NUT-04 mint quote: amount (1..mint_max_sats: 11006) in unit "sat"
 * (11013). A fresh id (32 hex from rng), a fake invoice
 * "lnbc<amount*10>n1p<random bech32 chars>", expiry now + quote_ttl_s,
 * state PAID at once (unless cfg.mint_quotes_unpaid). Stored; *out filled. */
dvm_err dvm_mint_create_mint_quote(dvm_mint *m, uint64_t amount, const char *unit,
                                   uint64_t now_ms, dvm_mint_quote *out, dvm_mint_error *err);

/* NUT-04 GET quote (unknown: 20000). */
dvm_err dvm_mint_get_mint_quote(dvm_mint *m, const char *quote_id, dvm_mint_quote *out,
                                dvm_mint_error *err);

/* Fake Lightning backend: mark an UNPAID mint quote PAID (tests, the
 * simulator). DVM_ERR_NOT_FOUND / DVM_ERR_STATE. */
dvm_err dvm_mint_fake_pay_quote(dvm_mint *m, const char *quote_id, dvm_mint_error *err);

/* NUT-04 mint: the quote must be PAID (UNPAID: 20001, ISSUED: 20002,
 * expired and unpaid: 20007), outputs as in swap, sum(outputs) == quote
 * amount (11005). Signs, then commits quote PAID -> ISSUED with the
 * outputs. sigs[0..n_out). */
dvm_err dvm_mint_mint(dvm_mint *m, const char *quote_id, const dvm_blinded_message *outs,
                      size_t n_out, uint64_t now_ms, dvm_blind_signature *sigs,
                      dvm_mint_error *err);

/* NUT-05 melt quote for a bolt11 `request` in unit "sat": the amount comes
 * from the invoice's human-readable part (amountless: 11011; over
 * melt_max_sats: 11006; unparseable: 10000). fee_reserve 0. */
dvm_err dvm_mint_create_melt_quote(dvm_mint *m, const char *request, const char *unit,
                                   uint64_t now_ms, dvm_melt_quote *out, dvm_mint_error *err);

/* NUT-05 GET quote (unknown: 20000). */
dvm_err dvm_mint_get_melt_quote(dvm_mint *m, const char *quote_id, dvm_melt_quote *out,
                                dvm_mint_error *err);

/* NUT-05 melt with the fake backend (pays at once): the quote must be
 * UNPAID (PENDING: 20005, PAID: 20006, expired: 20007), inputs verified,
 * sum(inputs) - fee >= amount + fee_reserve (else 11005). Commits inputs
 * PENDING + quote PENDING, "pays", then settles inputs SPENT + quote PAID
 * with a random preimage. Any excess over amount + fee_reserve is kept by
 * the mint (see dvm_mint_melt_with_change for NUT-08 change). *out gets
 * the final quote. */
dvm_err dvm_mint_melt(dvm_mint *m, const char *quote_id, const dvm_proof *ins, size_t n_in,
                      uint64_t now_ms, dvm_melt_quote *out, dvm_mint_error *err);

/* NUT-05 melt with NUT-08 change: as dvm_mint_melt, and the overpaid
 * amount (inputs - fee - amount; the fake backend's Lightning fee is 0, so
 * the whole fee_reserve comes back too) is returned as change on the blank
 * outputs outs[0..n_out) (active keyset, distinct B_; their amounts are
 * ignored): the binary split of the excess, largest first, one amount per
 * blank output; pieces beyond n_out are kept by the mint. change[0..*n_change)
 * receives the signatures (with DLEQ; amount set), in blank-output order.
 * outs may be NULL when n_out is 0. */
dvm_err dvm_mint_melt_with_change(dvm_mint *m, const char *quote_id, const dvm_proof *ins,
                                  size_t n_in, const dvm_blinded_message *outs, size_t n_out,
                                  uint64_t now_ms, dvm_melt_quote *out,
                                  dvm_blind_signature *change, size_t *n_change,
                                  dvm_mint_error *err);

/* Finish (or recover) a melt whose inputs are PENDING (after the first
 * commit of dvm_mint_melt): paid -> inputs SPENT, quote PENDING -> PAID
 * with payment_preimage (hex, required); !paid -> inputs released
 * (UNSPENT again), quote PENDING -> UNPAID. For a driver recovering a melt
 * interrupted between its two commits (each commit names the quote, so a
 * store can keep the quote id with the PENDING Ys) or a simulated backend
 * that answers later. Errors as the store's conflicts (not pending:
 * 10000; quote not PENDING: 20000/20006/...). */
dvm_err dvm_mint_melt_settle(dvm_mint *m, const char *quote_id,
                             const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n, bool paid,
                             const char *payment_preimage, dvm_mint_error *err);

/* NUT-07 checkstate: states[i] for Ys[i] (count limit: max_inputs). */
dvm_err dvm_mint_checkstate(dvm_mint *m, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n,
                            dvm_proof_state *states, dvm_mint_error *err);

/* Parse the amount (sats) out of a bolt11 invoice's human-readable part
 * ("ln" + currency prefix + amount + multiplier m/u/n/p, then "1").
 * DVM_ERR_INVALID if not an invoice, DVM_ERR_NOT_FOUND if amountless,
 * DVM_ERR_LIMIT for a sub-satoshi or oversized amount. */
dvm_err dvm_bolt11_amount_sats(const char *invoice, uint64_t *sats);

#endif

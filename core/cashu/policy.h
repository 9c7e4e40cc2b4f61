/* dvmstream — a provider's payment policy: what VERIFY_TOKEN runs.
 *
 * Given a decoded token (dvm_token, cashu/proof.h), decide offline whether
 * to credit it (DESIGN.md "Money is never lost"; seed
 * streaming-guide-p2p-cashu.md, "payment"):
 *  - only mints in the trusted list (default: the agent's configured mint;
 *    the reference agent accepts any mint a token names, so a customer
 *    could pay with a mint it runs itself),
 *  - unit "sat", amount > 0, every proof's keyset known to the policy (the
 *    driver supplies the mint's keysets, fetched over NUT-01) with a key for
 *    its amount,
 *  - every DLEQ present must verify (NUT-12, against the mint key for the
 *    proof's amount); if any proof has no DLEQ (or no r), the token cannot
 *    be checked offline: the answer is "swap before crediting",
 *  - a proof whose Y this agent has already seen is a replay,
 *  - the value accepted but not yet claimed (swapped at the mint) is
 *    bounded by max_unclaimed_sats: past it the answer is "claim first".
 *
 * Replay memory is bounded: two generations of at most replay_capacity/2
 * Ys each (a single token may overfill one by up to DVM_TOKEN_MAX_PROOFS);
 * the policy remembers at least the last replay_capacity/2 Ys it recorded
 * and never more than replay_capacity + DVM_TOKEN_MAX_PROOFS. Memory grows
 * with use (about 70 bytes per Y at load <= 1/2), so an idle policy costs
 * under 1 KiB plus ~2.2 KiB per keyset added. Older replays are still
 * caught by the mint at claim time (11001). */
#ifndef DVM_CASHU_POLICY_H
#define DVM_CASHU_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/proof.h"
#include "common/err.h"

typedef enum dvm_pay_verdict {
    DVM_PAY_ACCEPT = 0,            /* credit *amount now; recorded as unclaimed */
    DVM_PAY_SWAP_FIRST,            /* no DLEQ on some proof: swap at the mint, credit on success */
    DVM_PAY_CLAIM_FIRST,           /* over max_unclaimed: claim held tokens, then check again */
    DVM_PAY_NEED_KEYSET,           /* keyset unknown: fetch it (NUT-01), add it, check again */
    DVM_PAY_REJECT_UNTRUSTED_MINT, /* mint not in the trusted list */
    DVM_PAY_REJECT_UNIT,           /* unit is not "sat" */
    DVM_PAY_REJECT_AMOUNT,         /* zero, over 2^53-1, or an amount without a key */
    DVM_PAY_REJECT_REPLAY,         /* a proof seen before (or twice in the token) */
    DVM_PAY_REJECT_DLEQ,           /* a DLEQ proof that does not verify: forged */
    DVM_PAY_REJECT_MALFORMED       /* no proofs, bad point or secret, a NUT-10
                                      locked secret (not supported) */
} dvm_pay_verdict;

/* true for the REJECT_* verdicts (the payment must be refused). */
bool dvm_pay_verdict_is_reject(dvm_pay_verdict v);
/* "accept", "swap_first", "claim_first", "need_keyset", "untrusted_mint",
 * "unit", "amount", "replay", "dleq", "malformed". */
const char *dvm_pay_verdict_name(dvm_pay_verdict v);

#define DVM_PAY_POLICY_MAX_MINTS 16
#define DVM_PAY_POLICY_MAX_KEYSETS 64

typedef struct dvm_pay_policy_config {
    const char *const *trusted_mints; /* mint URLs (trailing '/' ignored) */
    size_t n_trusted;                 /* 1..DVM_PAY_POLICY_MAX_MINTS */
    uint64_t max_unclaimed_sats;      /* 0 means unlimited */
    size_t replay_capacity;           /* Ys remembered; 0 means 65536 */
} dvm_pay_policy_config;

typedef struct dvm_pay_policy dvm_pay_policy;

/* DVM_ERR_INVALID on a bad config (no trusted mint, URL too long, too
 * many), DVM_ERR_NOMEM. */
dvm_err dvm_pay_policy_new(dvm_pay_policy **out, const dvm_pay_policy_config *cfg);

/* As dvm_pay_policy_new, borrowing the crypto context ctx (must outlive the
 * policy) instead of creating one: for drivers running many policies (the
 * simulator's providers). ctx NULL behaves as dvm_pay_policy_new. */
dvm_err dvm_pay_policy_new_with_ctx(dvm_pay_policy **out, const dvm_pay_policy_config *cfg,
                                    const dvm_cashu_ctx *ctx);
/* Release the policy (NULL is fine). */
void dvm_pay_policy_free(dvm_pay_policy *p);

/* Make ks (public keys, id checked against them: DVM_ERR_INVALID) known
 * for mint_url (must be trusted: DVM_ERR_PROTO). Re-adding an id replaces
 * it. DVM_ERR_LIMIT past DVM_PAY_POLICY_MAX_KEYSETS. */
dvm_err dvm_pay_policy_add_keyset(dvm_pay_policy *p, const char *mint_url, const dvm_keyset *ks);

/* Decide on token t. *amount_sats gets its value (0 if malformed); the
 * reason (one line, fit for an `error` message) goes to reason[0..rlen).
 * ACCEPT records the Ys (replay) and adds the amount to the unclaimed
 * total; SWAP_FIRST records the Ys only; other verdicts change nothing. */
dvm_pay_verdict dvm_pay_policy_check(dvm_pay_policy *p, const dvm_token *t,
                                     uint64_t *amount_sats, char *reason, size_t rlen);

/* ---- the same decision in two steps (for drivers that verify in parallel)
 *
 * dvm_pay_policy_check is the composition of
 *   1. dvm_pay_policy_prepare: the stateless checks (trusted mint, unit,
 *      amounts, keysets and keys, secrets, C on the curve), the proofs' Ys
 *      (hash_to_curve), a Y twice in the token, the mint keys the DLEQ
 *      proofs are checked against (copied into the check);
 *   2. dvm_pay_policy_verify_dleq for each proof (NUT-12; the expensive
 *      part: ~4 scalar multiplications per proof), or dvm_pay_policy_verify
 *      for all of them;
 *   3. dvm_pay_policy_admit: the stateful step (replay set, unclaimed
 *      bound, recording), giving the same verdict, amount and reason as
 *      dvm_pay_policy_check would have given at that point.
 * Steps 1 and 2 read the policy only (`const`): they may run on several
 * threads at once and in any order, for several tokens, as long as nothing
 * changes the policy's keysets meanwhile (dvm_pay_policy_add_keyset; a
 * driver guards it with a readers-writer lock). Each proof's step 2 writes
 * only its own slot of the check, so the proofs of one token may be checked
 * on different threads. Step 3 mutates the policy and must be serialised
 * (one at a time, in the order payments are to be decided): two tokens
 * carrying the same proof, prepared and verified concurrently, are still
 * accepted at most once, by whichever is admitted first. */

typedef struct dvm_pay_check {
    int mint;                         /* index of the trusted mint */
    uint64_t amount;                  /* the token's value, sats */
    size_t n_proofs;
    size_t n_ys;                      /* Ys computed; < n_proofs: proof n_ys has a bad secret */
    bool dup;                         /* a Y twice in the token (all Ys computed) */
    bool all_dleq;                    /* every proof carries a DLEQ with r */
    uint8_t (*ys)[DVM_POINT_BYTES];   /* [n_proofs], owned */
    uint8_t (*keys)[DVM_POINT_BYTES]; /* [n_proofs] the mint key per proof, owned */
    uint8_t *dleq_failed;             /* [n_proofs] set by step 2, owned */
} dvm_pay_check;

/* Step 1 on token t (borrowed; keep it unchanged until step 2 is done).
 * Returns DVM_PAY_ACCEPT when the token goes on to steps 2 and 3 (c is
 * then filled and must be released with dvm_pay_check_free); any other
 * verdict is final, exactly as dvm_pay_policy_check returns it (reason in
 * reason[0..rlen), *c holds nothing to free, releasing it is harmless).
 * The policy is not changed. */
dvm_pay_verdict dvm_pay_policy_prepare(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c,
                                       char *reason, size_t rlen);

/* Step 2 for proof i < c->n_proofs of the token prepared into c: verifies
 * its DLEQ proof (NUT-12) if it carries one with r, and records a failure
 * in c->dleq_failed[i] (writes nothing else). */
void dvm_pay_policy_verify_dleq(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c, size_t i);

/* Step 2 for every proof of t. */
void dvm_pay_policy_verify(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c);

/* Step 3: decide on a token prepared (verdict DVM_PAY_ACCEPT) and verified
 * into c. Verdicts, *amount_sats, reason and what is recorded are those of
 * dvm_pay_policy_check: REJECT_REPLAY (a Y seen before, or twice in the
 * token), REJECT_MALFORMED (a secret with no point), REJECT_DLEQ,
 * SWAP_FIRST (Ys recorded), CLAIM_FIRST (nothing recorded; admitting the
 * same check again after a claim is fine), ACCEPT (Ys recorded, amount
 * added to the unclaimed total). c is not changed. */
dvm_pay_verdict dvm_pay_policy_admit(dvm_pay_policy *p, const dvm_pay_check *c, uint64_t *amount_sats,
                                     char *reason, size_t rlen);

/* Release what step 1 allocated (NULL and an empty check are fine). */
void dvm_pay_check_free(dvm_pay_check *c);

/* The driver claimed (swapped) accepted tokens worth `sats`: lowers the
 * unclaimed total (not below 0). */
void dvm_pay_policy_claimed(dvm_pay_policy *p, uint64_t sats);

/* The driver's own count of what it holds unclaimed, read back from its
 * store (e.g. right after a claim: the value still INCOMING or pending
 * there), replaces the running total. For a driver whose store can hold
 * tokens the policy has not admitted yet (committed while being checked),
 * so that subtracting what a claim took (dvm_pay_policy_claimed) could
 * drift; setting it from the store cannot. */
void dvm_pay_policy_set_unclaimed(dvm_pay_policy *p, uint64_t sats);

/* Sats accepted and not yet claimed. */
uint64_t dvm_pay_policy_unclaimed(const dvm_pay_policy *p);

#endif

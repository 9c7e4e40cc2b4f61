/* dvmstream simulator — the payment seam: the mock mint, customer wallets
 * and the provider payment policy, all of it core/cashu logic.
 *
 * The simulator itself knows no Cashu: every token it moves is a real token
 * string (cashuB...) produced and checked by core/cashu through this seam:
 *   - sim_pay_mint: a customer mints `amount` sats (NUT-04 with the fake
 *     Lightning backend: the quote is paid at once) into its wallet;
 *   - sim_pay_token: the wallet swaps (NUT-03) as needed and hands out a
 *     token of exactly `amount` sats (the seed's splitTokens);
 *   - sim_pay_verify: a provider runs the core payment policy on a token
 *     (trusted mint, unit, DLEQ NUT-12, replay);
 *   - sim_pay_claim: a provider swaps the tokens of a job at the mint;
 *     proofs already spent are refused by the mint (NUT error 11001): a
 *     double spend caught at claim.
 * Adversary variants of a token (forged, untrusted mint) are made here too,
 * so the simulator core never builds token bytes by hand.
 *
 * Wallets and policies are referred to by index (customer i, provider j).
 * Money conservation is checked by sim_pay_audit. */
#ifndef DVM_SIM_PAY_H
#define DVM_SIM_PAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/rng.h"
#include "session/provider.h"
#include "wire/msg.h"

typedef struct sim_pay sim_pay;

typedef enum sim_token_kind {
    SIM_TOKEN_HONEST = 0,
    SIM_TOKEN_FORGED,    /* a proof's C replaced: fails DLEQ / the mint's check */
    SIM_TOKEN_UNTRUSTED  /* minted at a second mint the providers do not trust */
} sim_token_kind;

/* Create the mock mint(s) (keysets derived from `seed`, fee input_fee_ppk)
 * and empty wallets for n_customers and policies for n_providers.
 * max_unclaimed_sats bounds what a provider holds unclaimed. */
dvm_err sim_pay_new(sim_pay **out, uint64_t seed, uint64_t input_fee_ppk, size_t n_customers,
                    size_t n_providers, uint64_t max_unclaimed_sats);
/* Release the wallets, policies and mock mint (NULL is fine). */
void sim_pay_free(sim_pay *p);

/* The URL the providers trust (the honest mock mint). */
const char *sim_pay_mint_url(const sim_pay *p);

/* Customer `c` mints `amount` sats at the honest mint into its wallet
 * (untrusted = true: at the second mint). */
dvm_err sim_pay_mint(sim_pay *p, size_t c, uint64_t amount, bool untrusted, const dvm_rng *rng);

/* Customer `c` takes a token of exactly `amount` sats from its wallet
 * (swapping at the mint when no exact set of proofs is at hand; *swapped
 * says so, for latency), encoded into `out` (replaced). DVM_ERR_LIMIT if the
 * wallet holds less than amount + fees. */
dvm_err sim_pay_token(sim_pay *p, size_t c, uint64_t amount, sim_token_kind kind, dvm_buf *out,
                      bool *swapped, const dvm_rng *rng);

/* A token the customer got back unsent goes back into its wallet. */
dvm_err sim_pay_return(sim_pay *p, size_t c, dvm_str token);

/* Provider `pv` runs the payment policy on `token`. The result is for
 * dvm_provider_on_verify; r->reason points into storage valid until the
 * next call. */
dvm_err sim_pay_verify(sim_pay *p, size_t pv, dvm_str token, dvm_verify_result *r);

/* Provider `pv` swaps tokens[0..n) at the mint (one batch; when the mint
 * refuses the batch because a proof is already spent, each token is tried
 * on its own). spent[i] is set to true for a token refused as already spent
 * (a double spend caught at claim), false for one claimed. *claimed_sats:
 * what the provider got into its wallet (after fees); *spent_sats: the
 * value of the refused tokens. */
dvm_err sim_pay_claim(sim_pay *p, size_t pv, const dvm_str *tokens, size_t n, bool *spent,
                      uint64_t *claimed_sats, uint64_t *spent_sats, const dvm_rng *rng);

/* The virtual clock, for quote expiries (ms since the start of the run). */
void sim_pay_set_now(sim_pay *p, uint64_t now_ms);

/* Conservation audit at the end of a run. Every value is in sats of the
 * honest mint; the untrusted mint's tokens are worthless to providers and
 * not counted. */
typedef struct sim_pay_audit {
    uint64_t minted_sats;    /* issued by mint quotes at the honest mint */
    uint64_t customer_sats;  /* proofs in customer wallets */
    uint64_t provider_sats;  /* proofs in provider wallets (claimed) */
    uint64_t unclaimed_sats; /* proofs handed out in tokens and still
                                unspent at the mint: in flight, held
                                unclaimed by providers, or lost with a
                                dropped connection; each proof once */
    uint64_t fees_sats;      /* NUT-02 input fees kept by the mint */
} sim_pay_audit;

/* Fill *a from the wallets, the tokens handed out and the mint's spent
 * set (NUT-07 checkstate). */
dvm_err sim_pay_audit_run(sim_pay *p, sim_pay_audit *a);

#endif

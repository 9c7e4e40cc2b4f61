/* Fuzz harness: token strings (cashuA/cashuB) through the token codec into
 * the provider's payment policy (cashu/policy.h), with a mint (seed
 * 32 x 0x22, keys 2^0..2^15) whose keyset the policy knows, trusting
 * FUZZ_MINT_URL.
 *
 * Invariants (abort on violation): a verdict always has a reason; ACCEPT
 * implies every proof verifies at the mint (C == kY) — an offline DLEQ
 * check must never let a forgery through — and that the same token is then
 * refused as a replay; the unclaimed total equals the accepted sum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/mint.h"
#include "cashu/mint_memstore.h"
#include "cashu/policy.h"
#include "cashu/token.h"
#include "fuzz_input.h"

#define FUZZ_MINT_URL "http://127.0.0.1:3338"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dvm_token t;
    char reason[256];
    if (dvm_token_decode((const char *)data, size, &t, reason, sizeof reason) != DVM_OK)
        return 0;
    prng p = {.s = 7};
    dvm_rng rng = {.fill = prng_fill, .ctx = &p};
    dvm_mint_memstore *ms;
    if (dvm_mint_memstore_new(&ms, 1024)) {
        dvm_token_free(&t);
        return 0;
    }
    dvm_mint_store st;
    dvm_mint_memstore_vtable(ms, &st);
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.seed, 0x22, sizeof cfg.seed);
    cfg.max_order = 16;
    dvm_mint *m;
    if (dvm_mint_new(&m, &cfg, &st, &rng))
        abort();
    const char *trusted[] = {FUZZ_MINT_URL};
    dvm_pay_policy_config pc = {.trusted_mints = trusted, .n_trusted = 1,
                                .max_unclaimed_sats = 1000, .replay_capacity = 64};
    dvm_pay_policy *pol;
    if (dvm_pay_policy_new_with_ctx(&pol, &pc, dvm_mint_ctx(m)) ||
        dvm_pay_policy_add_keyset(pol, FUZZ_MINT_URL, dvm_mint_active_keyset(m, "sat")))
        abort();
    uint64_t amount = 0;
    reason[0] = '\0';
    dvm_pay_verdict v = dvm_pay_policy_check(pol, &t, &amount, reason, sizeof reason);
    if (!reason[0])
        abort();
    if (v == DVM_PAY_ACCEPT) {
        dvm_mint_error err;
        if (dvm_mint_verify_proofs(m, t.proofs, t.n_proofs, NULL, &err) != DVM_OK)
            abort(); /* the policy accepted a proof the mint refuses */
        if (dvm_pay_policy_unclaimed(pol) != amount)
            abort();
        if (dvm_pay_policy_check(pol, &t, &amount, reason, sizeof reason) !=
            DVM_PAY_REJECT_REPLAY)
            abort();
    }
    dvm_pay_policy_free(pol);
    dvm_mint_free(m);
    dvm_mint_memstore_free(ms);
    dvm_token_free(&t);
    return 0;
}

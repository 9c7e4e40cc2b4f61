#include "cashu/proof.h"

#include <stdlib.h>
#include <string.h>

#define CASHU_MAX_SAFE_INT 9007199254740991ULL

dvm_err dvm_token_amount(const dvm_token *t, uint64_t *out_sats)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < t->n_proofs; i++) {
        uint64_t a = t->proofs[i].amount;
        if (a > CASHU_MAX_SAFE_INT || sum > CASHU_MAX_SAFE_INT - a)
            return DVM_ERR_INVALID;
        sum += a;
    }
    *out_sats = sum;
    return DVM_OK;
}

void dvm_token_free(dvm_token *t)
{
    free(t->proofs);
    memset(t, 0, sizeof *t);
}

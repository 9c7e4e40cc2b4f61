#define _POSIX_C_SOURCE 200809L
#include "cashu/mint.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dvm_mint {
    dvm_mint_config cfg;
    const dvm_mint_store *store;
    const dvm_rng *rng;
    dvm_cashu_ctx *ctx;
    size_t n_ks;
    dvm_keyset_priv *ks;
};

static dvm_err fail(dvm_mint_error *err, dvm_err ret, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static dvm_err fail(dvm_mint_error *err, dvm_err ret, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
    }
    return ret;
}

static dvm_err ok(dvm_mint_error *err)
{
    if (err) {
        err->code = 0;
        err->detail[0] = '\0';
    }
    return DVM_OK;
}

const char *dvm_nut_error_text(int code)
{
    switch (code) {
    case 10000: return "Generic error";
    case 10001: return "Proof verification failed";
    case 11001: return "Proofs already spent";
    case 11002: return "Proofs are pending";
    case 11003: return "Outputs already signed";
    case 11004: return "Outputs are pending";
    case 11005: return "Transaction is not balanced (inputs != outputs)";
    case 11006: return "Amount outside of limit range";
    case 11007: return "Duplicate inputs provided";
    case 11008: return "Duplicate outputs provided";
    case 11009: return "Inputs/Outputs of multiple units";
    case 11010: return "Inputs and outputs not of same unit";
    case 11011: return "Amountless invoice is not supported";
    case 11012: return "Amount in request does not equal invoice";
    case 11013: return "Unit in request is not supported";
    case 11014: return "Max inputs exceeded";
    case 11015: return "Max outputs exceeded";
    case 12001: return "Keyset is not known";
    case 12002: return "Keyset is inactive, cannot sign messages";
    case 12003: return "Keyset has expired";
    case 20000: return "Quote not found";
    case 20001: return "Quote request is not paid";
    case 20002: return "Quote has already been issued";
    case 20003: return "Minting is disabled";
    case 20004: return "Lightning payment failed";
    case 20005: return "Quote is pending";
    case 20006: return "Invoice already paid";
    case 20007: return "Quote is expired";
    default: return "unknown error";
    }
}

const char *dvm_proof_state_name(dvm_proof_state s)
{
    switch (s) {
    case DVM_PROOF_PENDING: return "PENDING";
    case DVM_PROOF_SPENT: return "SPENT";
    default: return "UNSPENT";
    }
}

const char *dvm_mint_quote_state_name(dvm_mint_quote_state s)
{
    switch (s) {
    case DVM_MINT_QUOTE_PAID: return "PAID";
    case DVM_MINT_QUOTE_ISSUED: return "ISSUED";
    default: return "UNPAID";
    }
}

const char *dvm_melt_quote_state_name(dvm_melt_quote_state s)
{
    switch (s) {
    case DVM_MELT_QUOTE_PENDING: return "PENDING";
    case DVM_MELT_QUOTE_PAID: return "PAID";
    default: return "UNPAID";
    }
}

/* ---- construction ---------------------------------------------------- */

dvm_err dvm_mint_new(dvm_mint **out, const dvm_mint_config *cfg, const dvm_mint_store *store,
                     const dvm_rng *rng)
{
    *out = NULL;
    if (!cfg || !store || !store->commit || !store->proof_states || !store->put_mint_quote ||
        !store->put_melt_quote || !store->get_mint_quote || !store->get_melt_quote || !rng)
        return DVM_ERR_INVALID;
    if (cfg->n_keysets > 64 || cfg->max_order > DVM_KEYSET_MAX_ORDERS ||
        (cfg->id_version != 0 && cfg->id_version != 1) || cfg->input_fee_ppk > 1000000)
        return DVM_ERR_INVALID;
    dvm_mint *m = calloc(1, sizeof *m);
    if (!m)
        return DVM_ERR_NOMEM;
    m->cfg = *cfg;
    if (!m->cfg.n_keysets)
        m->cfg.n_keysets = 1;
    if (!m->cfg.max_order)
        m->cfg.max_order = DVM_KEYSET_MAX_ORDERS;
    if (!m->cfg.max_inputs)
        m->cfg.max_inputs = DVM_MINT_DEFAULT_MAX_INPUTS;
    if (!m->cfg.max_outputs)
        m->cfg.max_outputs = DVM_MINT_DEFAULT_MAX_OUTPUTS;
    if (!m->cfg.mint_max_sats || m->cfg.mint_max_sats > DVM_CASHU_MAX_AMOUNT / 10)
        m->cfg.mint_max_sats = m->cfg.mint_max_sats ? DVM_CASHU_MAX_AMOUNT / 10 : (1ULL << 40);
    if (!m->cfg.melt_max_sats || m->cfg.melt_max_sats > DVM_CASHU_MAX_AMOUNT)
        m->cfg.melt_max_sats = m->cfg.melt_max_sats ? DVM_CASHU_MAX_AMOUNT : (1ULL << 40);
    if (!m->cfg.quote_ttl_s)
        m->cfg.quote_ttl_s = 3600;
    m->store = store;
    m->rng = rng;
    dvm_err e = dvm_cashu_ctx_new(&m->ctx, rng);
    if (e) {
        free(m);
        return e;
    }
    m->n_ks = m->cfg.n_keysets;
    m->ks = calloc(m->n_ks, sizeof *m->ks);
    if (!m->ks) {
        dvm_mint_free(m);
        return DVM_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->n_ks; i++) {
        bool active = i + 1 == m->n_ks;
        e = dvm_keyset_derive(m->ctx, m->cfg.seed, (uint32_t)i, "sat", m->cfg.max_order,
                              active ? m->cfg.input_fee_ppk : 0, active, m->cfg.id_version,
                              &m->ks[i]);
        if (e) {
            dvm_mint_free(m);
            return e;
        }
    }
    sodium_memzero(m->cfg.seed, sizeof m->cfg.seed);
    *out = m;
    return DVM_OK;
}

void dvm_mint_free(dvm_mint *m)
{
    if (!m)
        return;
    if (m->ks) {
        for (size_t i = 0; i < m->n_ks; i++)
            dvm_keyset_priv_wipe(&m->ks[i]);
        free(m->ks);
    }
    dvm_cashu_ctx_free(m->ctx);
    sodium_memzero(m, sizeof *m);
    free(m);
}

size_t dvm_mint_keyset_count(const dvm_mint *m)
{
    return m->n_ks;
}

const dvm_keyset *dvm_mint_keyset(const dvm_mint *m, size_t i)
{
    return i < m->n_ks ? &m->ks[i].pub : NULL;
}

static const dvm_keyset_priv *find_priv(const dvm_mint *m, const char *id)
{
    for (size_t i = 0; i < m->n_ks; i++)
        if (strcmp(m->ks[i].pub.id, id) == 0)
            return &m->ks[i];
    return NULL;
}

const dvm_keyset *dvm_mint_keyset_by_id(const dvm_mint *m, const char *id)
{
    const dvm_keyset_priv *k = find_priv(m, id);
    return k ? &k->pub : NULL;
}

const dvm_keyset *dvm_mint_active_keyset(const dvm_mint *m, const char *unit)
{
    for (size_t i = m->n_ks; i-- > 0;)
        if (m->ks[i].pub.active && strcmp(m->ks[i].pub.unit, unit) == 0)
            return &m->ks[i].pub;
    return NULL;
}

const dvm_cashu_ctx *dvm_mint_ctx(const dvm_mint *m)
{
    return m->ctx;
}

/* ---- verification -------------------------------------------------------- */

dvm_err dvm_mint_fee(const dvm_mint *m, const dvm_proof *ins, size_t n, uint64_t *fee,
                     dvm_mint_error *err)
{
    uint64_t ppk = 0;
    for (size_t i = 0; i < n; i++) {
        const dvm_keyset_priv *k = find_priv(m, ins[i].id);
        if (!k)
            return fail(err, DVM_ERR_NOT_FOUND, DVM_NUT_KEYSET_UNKNOWN,
                        "inputs[%zu]: keyset %s is not known", i, ins[i].id);
        ppk += k->pub.input_fee_ppk; /* <= 1e6 * 1000 inputs: no overflow */
    }
    *fee = dvm_cashu_fee_from_ppk(ppk);
    return ok(err);
}

static int cmp33(const void *a, const void *b)
{
    return memcmp(a, b, DVM_POINT_BYTES);
}

/* Index of a duplicate among n 33-byte keys, or -1. Sorts a copy. */
static long find_duplicate(const uint8_t (*keys)[DVM_POINT_BYTES], size_t n, dvm_err *e)
{
    *e = DVM_OK;
    if (n < 2)
        return -1;
    uint8_t (*copy)[DVM_POINT_BYTES] = malloc(n * DVM_POINT_BYTES);
    if (!copy) {
        *e = DVM_ERR_NOMEM;
        return -1;
    }
    memcpy(copy, keys, n * DVM_POINT_BYTES);
    qsort(copy, n, DVM_POINT_BYTES, cmp33);
    long dup = -1;
    for (size_t i = 1; i < n && dup < 0; i++)
        if (memcmp(copy[i - 1], copy[i], DVM_POINT_BYTES) == 0)
            for (size_t j = 0; j < n; j++)
                if (memcmp(keys[j], copy[i], DVM_POINT_BYTES) == 0) {
                    dup = (long)j;
                    break;
                }
    free(copy);
    return dup;
}

dvm_err dvm_mint_verify_proofs(const dvm_mint *m, const dvm_proof *ins, size_t n,
                               uint8_t (*Ys_out)[DVM_POINT_BYTES], dvm_mint_error *err)
{
    if (n > m->cfg.max_inputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_INPUTS, "more than %zu inputs",
                    m->cfg.max_inputs);
    uint8_t (*Ys)[DVM_POINT_BYTES] = Ys_out;
    if (!Ys && n) {
        Ys = malloc(n * DVM_POINT_BYTES);
        if (!Ys)
            return fail(err, DVM_ERR_NOMEM, DVM_NUT_GENERIC, "out of memory");
    }
    dvm_err ret = DVM_OK;
    for (size_t i = 0; i < n && !ret; i++) {
        const dvm_proof *p = &ins[i];
        const dvm_keyset_priv *k = find_priv(m, p->id);
        if (!k) {
            ret = fail(err, DVM_ERR_NOT_FOUND, DVM_NUT_KEYSET_UNKNOWN,
                       "inputs[%zu]: keyset %s is not known", i, p->id);
            break;
        }
        int o = dvm_cashu_amount_order(p->amount);
        if (o < 0 || !(k->pub.present & ((uint64_t)1 << o))) {
            ret = fail(err, DVM_ERR_CRYPTO, DVM_NUT_PROOF_VERIFICATION_FAILED,
                       "inputs[%zu]: amount %llu has no key in keyset %s", i,
                       (unsigned long long)p->amount, p->id);
            break;
        }
        if (p->secret_len == 0 || p->secret_len > DVM_SECRET_MAX) {
            ret = fail(err, DVM_ERR_INVALID, DVM_NUT_PROOF_VERIFICATION_FAILED,
                       "inputs[%zu]: empty or oversized secret", i);
            break;
        }
        if (p->secret[0] == '[') {
            /* A NUT-10 well-known secret carries spending conditions (P2PK,
             * HTLC) this mint does not check: refuse rather than ignore. */
            ret = fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_PROOF_VERIFICATION_FAILED,
                       "inputs[%zu]: spending conditions (NUT-10) are not supported", i);
            break;
        }
        if (dvm_cashu_proof_Y(m->ctx, p, Ys[i]) != DVM_OK ||
            dvm_cashu_verify(m->ctx, k->priv[o], (const uint8_t *)p->secret, p->secret_len,
                             p->C) != DVM_OK) {
            ret = fail(err, DVM_ERR_CRYPTO, DVM_NUT_PROOF_VERIFICATION_FAILED,
                       "inputs[%zu]: signature C does not verify", i);
            break;
        }
    }
    if (!ret) {
        dvm_err me;
        long d = find_duplicate((const uint8_t(*)[DVM_POINT_BYTES])Ys, n, &me);
        if (me)
            ret = fail(err, me, DVM_NUT_GENERIC, "out of memory");
        else if (d >= 0)
            ret = fail(err, DVM_ERR_EXISTS, DVM_NUT_DUPLICATE_INPUTS,
                       "inputs[%ld]: duplicate input", d);
    }
    if (Ys != Ys_out)
        free(Ys);
    return ret ? ret : ok(err);
}

/* Check outputs; *sum gets their total. */
static dvm_err check_outputs(const dvm_mint *m, const dvm_blinded_message *outs, size_t n,
                             uint64_t *sum, dvm_mint_error *err)
{
    if (n > m->cfg.max_outputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_OUTPUTS, "more than %zu outputs",
                    m->cfg.max_outputs);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        const dvm_keyset_priv *k = find_priv(m, outs[i].id);
        if (!k)
            return fail(err, DVM_ERR_NOT_FOUND, DVM_NUT_KEYSET_UNKNOWN,
                        "outputs[%zu]: keyset %s is not known", i, outs[i].id);
        if (!k->pub.active)
            return fail(err, DVM_ERR_PROTO, DVM_NUT_KEYSET_INACTIVE,
                        "outputs[%zu]: keyset %s is inactive", i, outs[i].id);
        if (strcmp(k->pub.unit, "sat") != 0)
            return fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_UNIT_UNSUPPORTED,
                        "outputs[%zu]: unit %s is not supported", i, k->pub.unit);
        if (!dvm_keyset_key(&k->pub, outs[i].amount))
            return fail(err, DVM_ERR_LIMIT, DVM_NUT_AMOUNT_OUT_OF_RANGE,
                        "outputs[%zu]: amount %llu is not a power of two of keyset %s", i,
                        (unsigned long long)outs[i].amount, outs[i].id);
        if (outs[i].amount > DVM_CASHU_MAX_AMOUNT || s > DVM_CASHU_MAX_AMOUNT - outs[i].amount)
            return fail(err, DVM_ERR_LIMIT, DVM_NUT_AMOUNT_OUT_OF_RANGE,
                        "outputs: total amount over 2^53-1");
        s += outs[i].amount;
        if (dvm_cashu_point_check(m->ctx, outs[i].B_) != DVM_OK)
            return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC,
                        "outputs[%zu]: B_ is not a valid point", i);
    }
    if (n >= 2) {
        dvm_err me;
        long d;
        uint8_t (*Bs)[DVM_POINT_BYTES] = malloc(n * DVM_POINT_BYTES);
        if (!Bs)
            return fail(err, DVM_ERR_NOMEM, DVM_NUT_GENERIC, "out of memory");
        for (size_t i = 0; i < n; i++)
            memcpy(Bs[i], outs[i].B_, DVM_POINT_BYTES);
        d = find_duplicate((const uint8_t(*)[DVM_POINT_BYTES])Bs, n, &me);
        free(Bs);
        if (me)
            return fail(err, me, DVM_NUT_GENERIC, "out of memory");
        if (d >= 0)
            return fail(err, DVM_ERR_EXISTS, DVM_NUT_DUPLICATE_OUTPUTS,
                        "outputs[%ld]: duplicate output", d);
    }
    *sum = s;
    return ok(err);
}

static dvm_err sign_outputs(const dvm_mint *m, const dvm_blinded_message *outs, size_t n,
                            dvm_blind_signature *sigs, dvm_mint_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const dvm_keyset_priv *k = find_priv(m, outs[i].id);
        int o = dvm_cashu_amount_order(outs[i].amount);
        dvm_blind_signature *s = &sigs[i];
        memset(s, 0, sizeof *s);
        s->amount = outs[i].amount;
        memcpy(s->id, outs[i].id, sizeof s->id);
        if (!k || o < 0 || dvm_cashu_sign(m->ctx, k->priv[o], outs[i].B_, s->C_) != DVM_OK ||
            dvm_cashu_dleq_prove(m->ctx, k->priv[o], outs[i].B_, s->C_, &s->dleq) != DVM_OK)
            return fail(err, DVM_ERR_CRYPTO, DVM_NUT_GENERIC, "outputs[%zu]: signing failed", i);
        s->has_dleq = true;
    }
    return ok(err);
}

static dvm_err map_conflict(dvm_err e, dvm_mint_conflict c, size_t idx, int found,
                            dvm_quote_kind kind, dvm_mint_error *err)
{
    if (e != DVM_ERR_EXISTS)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    switch (c) {
    case DVM_CONFLICT_SPENT:
        return fail(err, DVM_ERR_SPENT, DVM_NUT_PROOFS_SPENT, "inputs[%zu]: already spent", idx);
    case DVM_CONFLICT_PENDING:
        return fail(err, DVM_ERR_PROTO, DVM_NUT_PROOFS_PENDING, "inputs[%zu]: pending", idx);
    case DVM_CONFLICT_NOT_PENDING:
        return fail(err, DVM_ERR_STATE, DVM_NUT_GENERIC, "inputs[%zu]: not pending", idx);
    case DVM_CONFLICT_OUTPUT_SIGNED:
        return fail(err, DVM_ERR_EXISTS, DVM_NUT_OUTPUTS_SIGNED,
                    "outputs[%zu]: already signed", idx);
    case DVM_CONFLICT_QUOTE_STATE:
        if (found < 0)
            return fail(err, DVM_ERR_NOT_FOUND, DVM_NUT_QUOTE_UNKNOWN, "quote not found");
        if (kind == DVM_QUOTE_MINT) {
            if (found == DVM_MINT_QUOTE_ISSUED)
                return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_ISSUED, "quote already issued");
            return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_NOT_PAID, "quote is not paid");
        }
        if (found == DVM_MELT_QUOTE_PENDING)
            return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_PENDING, "quote is pending");
        if (found == DVM_MELT_QUOTE_PAID)
            return fail(err, DVM_ERR_PROTO, DVM_NUT_INVOICE_PAID, "invoice already paid");
        return fail(err, DVM_ERR_PROTO, DVM_NUT_GENERIC, "quote in unexpected state");
    default:
        return fail(err, DVM_ERR_STATE, DVM_NUT_GENERIC, "storage conflict");
    }
}

static dvm_err do_commit(dvm_mint *m, const dvm_mint_commit *c, dvm_mint_error *err)
{
    dvm_mint_conflict conflict = DVM_CONFLICT_NONE;
    size_t idx = 0;
    int found = -1;
    dvm_err e = m->store->commit(m->store->ctx, c, &conflict, &idx, &found);
    if (e)
        return map_conflict(e, conflict, idx, found, c->quote_kind, err);
    return ok(err);
}

static dvm_err collect_B(const dvm_blinded_message *outs, size_t n,
                         uint8_t (**Bs)[DVM_POINT_BYTES], dvm_mint_error *err)
{
    *Bs = NULL;
    if (!n)
        return DVM_OK;
    *Bs = malloc(n * DVM_POINT_BYTES);
    if (!*Bs)
        return fail(err, DVM_ERR_NOMEM, DVM_NUT_GENERIC, "out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy((*Bs)[i], outs[i].B_, DVM_POINT_BYTES);
    return DVM_OK;
}

/* Verify inputs, unit and sums; *Ys (malloc'd, n_in) and *in_sum, *fee. */
static dvm_err check_inputs(dvm_mint *m, const dvm_proof *ins, size_t n_in,
                            uint8_t (**Ys)[DVM_POINT_BYTES], uint64_t *in_sum, uint64_t *fee,
                            dvm_mint_error *err)
{
    *Ys = NULL;
    if (n_in == 0)
        return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "no inputs");
    if (n_in > m->cfg.max_inputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_INPUTS, "more than %zu inputs",
                    m->cfg.max_inputs);
    for (size_t i = 0; i < n_in; i++) {
        const dvm_keyset_priv *k = find_priv(m, ins[i].id);
        if (k && strcmp(k->pub.unit, "sat") != 0)
            return fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_UNIT_MISMATCH,
                        "inputs[%zu]: unit %s, outputs are sat", i, k->pub.unit);
    }
    *Ys = malloc(n_in * DVM_POINT_BYTES);
    if (!*Ys)
        return fail(err, DVM_ERR_NOMEM, DVM_NUT_GENERIC, "out of memory");
    dvm_err e = dvm_mint_verify_proofs(m, ins, n_in, *Ys, err);
    if (!e)
        e = dvm_mint_fee(m, ins, n_in, fee, err);
    uint64_t s = 0;
    for (size_t i = 0; i < n_in && !e; i++) {
        if (ins[i].amount > DVM_CASHU_MAX_AMOUNT || s > DVM_CASHU_MAX_AMOUNT - ins[i].amount)
            e = fail(err, DVM_ERR_LIMIT, DVM_NUT_AMOUNT_OUT_OF_RANGE,
                     "inputs: total amount over 2^53-1");
        else
            s += ins[i].amount;
    }
    if (e) {
        free(*Ys);
        *Ys = NULL;
        return e;
    }
    *in_sum = s;
    return ok(err);
}

/* ---- NUT-03 swap -------------------------------------------------------- */

dvm_err dvm_mint_swap(dvm_mint *m, const dvm_proof *ins, size_t n_in,
                      const dvm_blinded_message *outs, size_t n_out, dvm_blind_signature *sigs,
                      dvm_mint_error *err)
{
    if (n_in > m->cfg.max_inputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_INPUTS, "more than %zu inputs",
                    m->cfg.max_inputs);
    if (n_out > m->cfg.max_outputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_OUTPUTS, "more than %zu outputs",
                    m->cfg.max_outputs);
    uint64_t out_sum = 0, in_sum = 0, fee = 0;
    dvm_err e = check_outputs(m, outs, n_out, &out_sum, err);
    if (e)
        return e;
    uint8_t (*Ys)[DVM_POINT_BYTES] = NULL, (*Bs)[DVM_POINT_BYTES] = NULL;
    e = check_inputs(m, ins, n_in, &Ys, &in_sum, &fee, err);
    if (e)
        return e;
    if (in_sum < fee || in_sum - fee != out_sum) {
        e = fail(err, DVM_ERR_PROTO, DVM_NUT_UNBALANCED,
                 "inputs %llu - fee %llu != outputs %llu", (unsigned long long)in_sum,
                 (unsigned long long)fee, (unsigned long long)out_sum);
        goto done;
    }
    if ((e = sign_outputs(m, outs, n_out, sigs, err)) || (e = collect_B(outs, n_out, &Bs, err)))
        goto done;
    dvm_mint_commit c = {
        .Ys = (const uint8_t(*)[DVM_POINT_BYTES])Ys,
        .n_Ys = n_in,
        .Ys_state = DVM_PROOF_SPENT,
        .B_s = (const uint8_t(*)[DVM_POINT_BYTES])Bs,
        .sigs = sigs,
        .n_B_s = n_out,
    };
    e = do_commit(m, &c, err);
done:
    if (e && sigs && n_out)
        memset(sigs, 0, n_out * sizeof *sigs);
    free(Ys);
    free(Bs);
    return e;
}

/* ---- quotes -------------------------------------------------------------- */

static void random_hex(const dvm_rng *rng, char *out, size_t bytes)
{
    uint8_t b[32];
    dvm_rng_fill(rng, b, bytes);
    dvm_cashu_hex_encode(b, bytes, out);
}

static const char BECH32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static void fake_invoice(const dvm_rng *rng, uint64_t sats, char *out, size_t cap)
{
    uint8_t r[52];
    dvm_rng_fill(rng, r, sizeof r);
    int n = snprintf(out, cap, "lnbc%llun1p", (unsigned long long)(sats * 10));
    for (size_t i = 0; i < sizeof r && (size_t)n + 1 < cap; i++)
        out[n++] = BECH32[r[i] & 31];
    out[n] = '\0';
}

dvm_err dvm_mint_create_mint_quote(dvm_mint *m, uint64_t amount, const char *unit,
                                   uint64_t now_ms, dvm_mint_quote *out, dvm_mint_error *err)
{
    memset(out, 0, sizeof *out);
    if (!unit || strcmp(unit, "sat") != 0)
        return fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_UNIT_UNSUPPORTED,
                    "unit %.16s is not supported", unit ? unit : "(none)");
    if (amount == 0 || amount > m->cfg.mint_max_sats)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_AMOUNT_OUT_OF_RANGE,
                    "amount must be 1..%llu sats", (unsigned long long)m->cfg.mint_max_sats);
    random_hex(m->rng, out->quote, 16);
    fake_invoice(m->rng, amount, out->request, sizeof out->request);
    out->amount = amount;
    strcpy(out->unit, "sat");
    out->state = m->cfg.mint_quotes_unpaid ? DVM_MINT_QUOTE_UNPAID : DVM_MINT_QUOTE_PAID;
    out->expiry = now_ms / 1000 + m->cfg.quote_ttl_s;
    dvm_err e = m->store->put_mint_quote(m->store->ctx, out);
    if (e)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    return ok(err);
}

dvm_err dvm_mint_get_mint_quote(dvm_mint *m, const char *quote_id, dvm_mint_quote *out,
                                dvm_mint_error *err)
{
    dvm_err e = m->store->get_mint_quote(m->store->ctx, quote_id, out);
    if (e == DVM_ERR_NOT_FOUND)
        return fail(err, e, DVM_NUT_QUOTE_UNKNOWN, "quote not found");
    if (e)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    return ok(err);
}

dvm_err dvm_mint_fake_pay_quote(dvm_mint *m, const char *quote_id, dvm_mint_error *err)
{
    dvm_mint_commit c = {
        .quote_kind = DVM_QUOTE_MINT,
        .quote_id = quote_id,
        .quote_from = DVM_MINT_QUOTE_UNPAID,
        .quote_to = DVM_MINT_QUOTE_PAID,
    };
    dvm_err e = do_commit(m, &c, err);
    return e;
}

dvm_err dvm_mint_mint(dvm_mint *m, const char *quote_id, const dvm_blinded_message *outs,
                      size_t n_out, uint64_t now_ms, dvm_blind_signature *sigs,
                      dvm_mint_error *err)
{
    dvm_mint_quote q;
    dvm_err e = dvm_mint_get_mint_quote(m, quote_id, &q, err);
    if (e)
        return e;
    if (q.state == DVM_MINT_QUOTE_ISSUED)
        return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_ISSUED, "quote already issued");
    if (q.state == DVM_MINT_QUOTE_UNPAID) {
        if (now_ms / 1000 > q.expiry)
            return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_EXPIRED, "quote is expired");
        return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_NOT_PAID, "quote is not paid");
    }
    if (n_out == 0)
        return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "no outputs");
    uint64_t out_sum = 0;
    if ((e = check_outputs(m, outs, n_out, &out_sum, err)))
        return e;
    if (out_sum != q.amount)
        return fail(err, DVM_ERR_PROTO, DVM_NUT_UNBALANCED, "outputs %llu != quote amount %llu",
                    (unsigned long long)out_sum, (unsigned long long)q.amount);
    uint8_t (*Bs)[DVM_POINT_BYTES] = NULL;
    if ((e = sign_outputs(m, outs, n_out, sigs, err)) || (e = collect_B(outs, n_out, &Bs, err)))
        goto done;
    dvm_mint_commit c = {
        .B_s = (const uint8_t(*)[DVM_POINT_BYTES])Bs,
        .sigs = sigs,
        .n_B_s = n_out,
        .quote_kind = DVM_QUOTE_MINT,
        .quote_id = q.quote,
        .quote_from = DVM_MINT_QUOTE_PAID,
        .quote_to = DVM_MINT_QUOTE_ISSUED,
    };
    e = do_commit(m, &c, err);
done:
    if (e)
        memset(sigs, 0, n_out * sizeof *sigs);
    free(Bs);
    return e;
}

/* ---- NUT-05 melt ----------------------------------------------------------- */

dvm_err dvm_bolt11_amount_sats(const char *inv, uint64_t *sats)
{
    size_t len = strnlen(inv, DVM_BOLT11_MAX + 1);
    if (len > DVM_BOLT11_MAX || len < 4)
        return DVM_ERR_INVALID;
    /* human-readable part: up to the last '1' */
    size_t sep = len;
    for (size_t i = len; i-- > 0;)
        if (inv[i] == '1') {
            sep = i;
            break;
        }
    if (sep == len)
        return DVM_ERR_INVALID;
    if ((inv[0] | 0x20) != 'l' || (inv[1] | 0x20) != 'n')
        return DVM_ERR_INVALID;
    size_t i = 2;
    while (i < sep && ((inv[i] | 0x20) >= 'a' && (inv[i] | 0x20) <= 'z'))
        i++;
    if (i == 2)
        return DVM_ERR_INVALID; /* no currency prefix */
    if (i == sep)
        return DVM_ERR_NOT_FOUND; /* amountless */
    uint64_t v = 0;
    size_t digits = 0;
    while (i < sep && inv[i] >= '0' && inv[i] <= '9') {
        if (v > 1000000000000000ULL)
            return DVM_ERR_LIMIT;
        v = v * 10 + (uint64_t)(inv[i] - '0');
        i++;
        digits++;
    }
    if (!digits)
        return DVM_ERR_INVALID;
    /* amount in units of 0.1 msat (pico-BTC): 1 BTC = 1e12 pBTC */
    uint64_t mult_p;
    if (i == sep) {
        mult_p = 1000000000000ULL;
    } else if (i + 1 == sep) {
        switch (inv[i] | 0x20) {
        case 'm': mult_p = 1000000000ULL; break;
        case 'u': mult_p = 1000000ULL; break;
        case 'n': mult_p = 1000ULL; break;
        case 'p': mult_p = 1ULL; break;
        default: return DVM_ERR_INVALID;
        }
    } else {
        return DVM_ERR_INVALID;
    }
    /* sats = v * mult_p / 10^4 (1 sat = 1e4 pBTC) */
    if (v > UINT64_MAX / mult_p)
        return DVM_ERR_LIMIT;
    uint64_t p = v * mult_p;
    if (p % 10000 != 0)
        return DVM_ERR_LIMIT; /* sub-satoshi */
    *sats = p / 10000;
    if (*sats == 0 || *sats > DVM_CASHU_MAX_AMOUNT)
        return DVM_ERR_LIMIT;
    return DVM_OK;
}

dvm_err dvm_mint_create_melt_quote(dvm_mint *m, const char *request, const char *unit,
                                   uint64_t now_ms, dvm_melt_quote *out, dvm_mint_error *err)
{
    memset(out, 0, sizeof *out);
    if (!unit || strcmp(unit, "sat") != 0)
        return fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_UNIT_UNSUPPORTED,
                    "unit %.16s is not supported", unit ? unit : "(none)");
    if (!request)
        return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "no request");
    uint64_t sats = 0;
    dvm_err e = dvm_bolt11_amount_sats(request, &sats);
    if (e == DVM_ERR_NOT_FOUND)
        return fail(err, DVM_ERR_UNSUPPORTED, DVM_NUT_AMOUNTLESS_INVOICE,
                    "amountless invoice is not supported");
    if (e == DVM_ERR_LIMIT || (!e && sats > m->cfg.melt_max_sats))
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_AMOUNT_OUT_OF_RANGE,
                    "invoice amount outside 1..%llu sats",
                    (unsigned long long)m->cfg.melt_max_sats);
    if (e)
        return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "request is not a bolt11 invoice");
    random_hex(m->rng, out->quote, 16);
    memcpy(out->request, request, strlen(request) + 1);
    out->amount = sats;
    out->fee_reserve = 0;
    strcpy(out->unit, "sat");
    out->state = DVM_MELT_QUOTE_UNPAID;
    out->expiry = now_ms / 1000 + m->cfg.quote_ttl_s;
    e = m->store->put_melt_quote(m->store->ctx, out);
    if (e)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    return ok(err);
}

dvm_err dvm_mint_get_melt_quote(dvm_mint *m, const char *quote_id, dvm_melt_quote *out,
                                dvm_mint_error *err)
{
    dvm_err e = m->store->get_melt_quote(m->store->ctx, quote_id, out);
    if (e == DVM_ERR_NOT_FOUND)
        return fail(err, e, DVM_NUT_QUOTE_UNKNOWN, "quote not found");
    if (e)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    return ok(err);
}

static dvm_err settle(dvm_mint *m, const char *quote_id, const uint8_t (*Ys)[DVM_POINT_BYTES],
                      size_t n, bool paid, const char *payment_preimage,
                      const uint8_t (*Bs)[DVM_POINT_BYTES], const dvm_blind_signature *sigs,
                      size_t n_B, dvm_mint_error *err)
{
    if (paid && (!payment_preimage || strlen(payment_preimage) != 64))
        return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "a paid melt needs a 32-byte preimage");
    dvm_mint_commit c = {
        .Ys = Ys,
        .n_Ys = n,
        .Ys_state = paid ? DVM_PROOF_SPENT : DVM_PROOF_UNSPENT,
        .settle = true,
        .B_s = paid ? Bs : NULL,
        .sigs = paid ? sigs : NULL,
        .n_B_s = paid ? n_B : 0,
        .quote_kind = DVM_QUOTE_MELT,
        .quote_id = quote_id,
        .quote_from = DVM_MELT_QUOTE_PENDING,
        .quote_to = paid ? DVM_MELT_QUOTE_PAID : DVM_MELT_QUOTE_UNPAID,
        .payment_preimage = paid ? payment_preimage : NULL,
    };
    return do_commit(m, &c, err);
}

dvm_err dvm_mint_melt(dvm_mint *m, const char *quote_id, const dvm_proof *ins, size_t n_in,
                      uint64_t now_ms, dvm_melt_quote *out, dvm_mint_error *err)
{
    size_t n_change = 0;
    return dvm_mint_melt_with_change(m, quote_id, ins, n_in, NULL, 0, now_ms, out, NULL,
                                     &n_change, err);
}

dvm_err dvm_mint_melt_with_change(dvm_mint *m, const char *quote_id, const dvm_proof *ins,
                                  size_t n_in, const dvm_blinded_message *outs, size_t n_out,
                                  uint64_t now_ms, dvm_melt_quote *out,
                                  dvm_blind_signature *change, size_t *n_change,
                                  dvm_mint_error *err)
{
    *n_change = 0;
    dvm_melt_quote q;
    dvm_err e = dvm_mint_get_melt_quote(m, quote_id, &q, err);
    if (e)
        return e;
    if (q.state == DVM_MELT_QUOTE_PENDING)
        return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_PENDING, "quote is pending");
    if (q.state == DVM_MELT_QUOTE_PAID)
        return fail(err, DVM_ERR_PROTO, DVM_NUT_INVOICE_PAID, "invoice already paid");
    if (now_ms / 1000 > q.expiry)
        return fail(err, DVM_ERR_PROTO, DVM_NUT_QUOTE_EXPIRED, "quote is expired");
    /* Blank outputs: checked as outputs with a placeholder amount of 1. */
    dvm_blinded_message *blank = NULL;
    uint8_t (*Bs)[DVM_POINT_BYTES] = NULL;
    uint8_t (*Ys)[DVM_POINT_BYTES] = NULL;
    size_t nc = 0;
    uint64_t in_sum = 0, fee = 0;
    if (n_out) {
        uint64_t ignored;
        blank = malloc(n_out * sizeof *blank);
        if (!blank)
            return fail(err, DVM_ERR_NOMEM, DVM_NUT_GENERIC, "out of memory");
        for (size_t i = 0; i < n_out; i++) {
            blank[i] = outs[i];
            blank[i].amount = 1;
        }
        if ((e = check_outputs(m, blank, n_out, &ignored, err)))
            goto done;
    }
    if ((e = check_inputs(m, ins, n_in, &Ys, &in_sum, &fee, err)))
        goto done;
    if (in_sum < fee || in_sum - fee < q.amount + q.fee_reserve) {
        e = fail(err, DVM_ERR_PROTO, DVM_NUT_UNBALANCED,
                 "inputs %llu - fee %llu < amount %llu + fee_reserve %llu",
                 (unsigned long long)in_sum, (unsigned long long)fee,
                 (unsigned long long)q.amount, (unsigned long long)q.fee_reserve);
        goto done;
    }
    /* NUT-08: the excess (the fake backend pays no Lightning fee) as change,
     * largest pieces first. */
    if (n_out) {
        uint64_t parts[64];
        size_t np;
        dvm_cashu_amount_split(in_sum - fee - q.amount, parts, &np);
        for (size_t i = np; i-- > 0 && nc < n_out;) {
            if (!dvm_keyset_key(dvm_mint_keyset_by_id(m, blank[nc].id), parts[i]))
                continue; /* no key for that amount: kept by the mint */
            blank[nc++].amount = parts[i];
        }
        if ((e = sign_outputs(m, blank, nc, change, err)) || (e = collect_B(blank, nc, &Bs, err)))
            goto done;
    }
    dvm_mint_commit c1 = {
        .Ys = (const uint8_t(*)[DVM_POINT_BYTES])Ys,
        .n_Ys = n_in,
        .Ys_state = DVM_PROOF_PENDING,
        .quote_kind = DVM_QUOTE_MELT,
        .quote_id = q.quote,
        .quote_from = DVM_MELT_QUOTE_UNPAID,
        .quote_to = DVM_MELT_QUOTE_PENDING,
    };
    if ((e = do_commit(m, &c1, err)))
        goto done;
    /* The fake Lightning backend pays at once. */
    char preimage[65];
    random_hex(m->rng, preimage, 32);
    if ((e = settle(m, q.quote, (const uint8_t(*)[DVM_POINT_BYTES])Ys, n_in, true, preimage,
                    (const uint8_t(*)[DVM_POINT_BYTES])Bs, change, nc, err)))
        goto done;
    q.state = DVM_MELT_QUOTE_PAID;
    memcpy(q.payment_preimage, preimage, sizeof preimage);
    *out = q;
    *n_change = nc;
done:
    if (e && change && nc)
        memset(change, 0, nc * sizeof *change);
    free(blank);
    free(Bs);
    free(Ys);
    return e;
}

dvm_err dvm_mint_melt_settle(dvm_mint *m, const char *quote_id,
                             const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n, bool paid,
                             const char *payment_preimage, dvm_mint_error *err)
{
    return settle(m, quote_id, Ys, n, paid, payment_preimage, NULL, NULL, 0, err);
}

/* ---- NUT-07 ---------------------------------------------------------------- */

dvm_err dvm_mint_checkstate(dvm_mint *m, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n,
                            dvm_proof_state *states, dvm_mint_error *err)
{
    if (n > m->cfg.max_inputs)
        return fail(err, DVM_ERR_LIMIT, DVM_NUT_MAX_INPUTS, "more than %zu Ys",
                    m->cfg.max_inputs);
    for (size_t i = 0; i < n; i++)
        if (dvm_cashu_point_check(m->ctx, Ys[i]) != DVM_OK)
            return fail(err, DVM_ERR_INVALID, DVM_NUT_GENERIC, "Ys[%zu]: not a valid point", i);
    if (n == 0)
        return ok(err);
    dvm_err e = m->store->proof_states(m->store->ctx, Ys, n, states);
    if (e)
        return fail(err, e, DVM_NUT_GENERIC, "storage failure: %s", dvm_strerror(e));
    return ok(err);
}

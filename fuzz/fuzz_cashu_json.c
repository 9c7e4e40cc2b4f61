/* Fuzz harness: the Cashu JSON model parsers (cashu/nut_json.h).
 *
 * Input: byte 0 selects (mod 4) a keyset object (GET /v1/keys entry), a
 * Proof array, a BlindedMessage array or a BlindSignature array; the rest
 * is JSON text. Invariant (abort on violation): whatever parses
 * re-serialises and parses again to the same values; a rejection always
 * has a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/nut_json.h"

#define MAX_ITEMS 64

static json_t *reparse(json_t *j)
{
    if (!j)
        abort();
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        abort();
    json_t *back = json_loads(s, 0, NULL);
    free(s);
    if (!back)
        abort();
    return back;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return 0;
    dvm_cashu_ctx *ctx;
    if (dvm_cashu_ctx_new(&ctx, NULL)) {
        json_decref(j);
        return 0;
    }
    char reason[200];
    reason[0] = '\0';
    switch (data[0] % 4) {
    case 0: {
        dvm_keyset ks, ks2;
        if (dvm_cashu_keyset_from_json(ctx, j, &ks, reason, sizeof reason)) {
            if (!reason[0])
                abort();
            break;
        }
        json_t *b = reparse(dvm_cashu_keyset_to_json(&ks));
        if (dvm_cashu_keyset_from_json(ctx, b, &ks2, reason, sizeof reason) ||
            strcmp(ks.id, ks2.id) != 0 || ks.present != ks2.present ||
            memcmp(ks.keys, ks2.keys, sizeof ks.keys) != 0)
            abort();
        json_decref(b);
        break;
    }
    case 1: {
        dvm_proof *p, *p2;
        size_t n, n2;
        if (dvm_cashu_proofs_from_json(ctx, j, MAX_ITEMS, "proofs", &p, &n, reason,
                                       sizeof reason)) {
            if (!reason[0])
                abort();
            break;
        }
        json_t *b = reparse(dvm_cashu_proofs_to_json(p, n));
        if (dvm_cashu_proofs_from_json(ctx, b, MAX_ITEMS, "proofs", &p2, &n2, reason,
                                       sizeof reason) ||
            n2 != n || (n && memcmp(p, p2, n * sizeof *p) != 0))
            abort();
        free(p);
        free(p2);
        json_decref(b);
        break;
    }
    case 2: {
        dvm_blinded_message *m, *m2;
        size_t n, n2;
        if (dvm_cashu_blinded_messages_from_json(ctx, j, MAX_ITEMS, "outputs", &m, &n, reason,
                                                 sizeof reason)) {
            if (!reason[0])
                abort();
            break;
        }
        json_t *b = reparse(dvm_cashu_blinded_messages_to_json(m, n));
        if (dvm_cashu_blinded_messages_from_json(ctx, b, MAX_ITEMS, "outputs", &m2, &n2, reason,
                                                 sizeof reason) ||
            n2 != n || (n && memcmp(m, m2, n * sizeof *m) != 0))
            abort();
        free(m);
        free(m2);
        json_decref(b);
        break;
    }
    default: {
        dvm_blind_signature *s, *s2;
        size_t n, n2;
        if (dvm_cashu_blind_signatures_from_json(ctx, j, MAX_ITEMS, "signatures", &s, &n, reason,
                                                 sizeof reason)) {
            if (!reason[0])
                abort();
            break;
        }
        json_t *b = reparse(dvm_cashu_blind_signatures_to_json(s, n));
        if (dvm_cashu_blind_signatures_from_json(ctx, b, MAX_ITEMS, "signatures", &s2, &n2,
                                                 reason, sizeof reason) ||
            n2 != n || (n && memcmp(s, s2, n * sizeof *s) != 0))
            abort();
        free(s);
        free(s2);
        json_decref(b);
        break;
    }
    }
    json_decref(j);
    dvm_cashu_ctx_free(ctx);
    return 0;
}

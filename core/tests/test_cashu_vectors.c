/* NUT-00, NUT-01, NUT-02 and NUT-12 test vectors (cashubtc/nuts tests/),
 * read from the JSON files in fixtures/vectors/cashu/ (copied from
 * ../shared/vectors/cashu/nut-*-tests.md). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/nut_json.h"

static dvm_cashu_ctx *ctx;

static void setup(void)
{
    cr_assert_eq(dvm_cashu_ctx_new(&ctx, NULL), DVM_OK);
}

static void teardown(void)
{
    dvm_cashu_ctx_free(ctx);
}

static json_t *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "fixtures/vectors/cashu/%s", name);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    cr_assert_not_null(j, "cannot load %s: %s", path, jerr.text);
    return j;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert_not_null(s, "field %s", k);
    return s;
}

static void hex(const json_t *o, const char *k, uint8_t *out, size_t n)
{
    cr_assert_eq(dvm_cashu_hex_decode(str(o, k), out, n), DVM_OK, "hex field %s", k);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
    char h[200];
    dvm_cashu_hex_encode(got, n, h);
    cr_assert_str_eq(h, want);
}

TestSuite(nut00, .init = setup, .fini = teardown);

Test(nut00, hash_to_curve)
{
    json_t *j = load("nut-00.json");
    json_t *arr = json_object_get(j, "hash_to_curve");
    cr_assert_eq(json_array_size(arr), 3);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        uint8_t msg[32], Y[33];
        hex(v, "message", msg, 32);
        cr_assert_eq(dvm_cashu_hash_to_curve(ctx, msg, 32, Y), DVM_OK);
        assert_hex(Y, 33, str(v, "point"));
    }
    json_decref(j);
}

Test(nut00, blinded_messages)
{
    json_t *j = load("nut-00.json");
    json_t *arr = json_object_get(j, "blind");
    cr_assert_eq(json_array_size(arr), 2);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        uint8_t x[32], r[32], B_[33];
        hex(v, "x", x, 32);
        hex(v, "r", r, 32);
        cr_assert_eq(dvm_cashu_blind(ctx, x, 32, r, B_), DVM_OK);
        assert_hex(B_, 33, str(v, "B_"));
    }
    json_decref(j);
}

Test(nut00, blind_signatures)
{
    json_t *j = load("nut-00.json");
    json_t *arr = json_object_get(j, "sign");
    cr_assert_eq(json_array_size(arr), 2);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        uint8_t k[32], B_[33], C_[33];
        hex(v, "k", k, 32);
        hex(v, "B_", B_, 33);
        cr_assert_eq(dvm_cashu_sign(ctx, k, B_, C_), DVM_OK);
        assert_hex(C_, 33, str(v, "C_"));
    }
    json_decref(j);
}

Test(nut00, blind_sign_unblind_verify_roundtrip)
{
    /* The protocol of NUT-00 end to end with the vector keys: unblinding
     * the signature on a blinded vector secret verifies; a different secret
     * or key does not. */
    json_t *j = load("nut-00.json");
    json_t *b = json_array_get(json_object_get(j, "blind"), 0);
    json_t *s = json_array_get(json_object_get(j, "sign"), 1);
    uint8_t x[32], r[32], k[32], K[33], B_[33], C_[33], C[33];
    hex(b, "x", x, 32);
    hex(b, "r", r, 32);
    hex(s, "k", k, 32);
    cr_assert_eq(dvm_cashu_pubkey(ctx, k, K), DVM_OK);
    cr_assert_eq(dvm_cashu_blind(ctx, x, 32, r, B_), DVM_OK);
    cr_assert_eq(dvm_cashu_sign(ctx, k, B_, C_), DVM_OK);
    cr_assert_eq(dvm_cashu_unblind(ctx, C_, r, K, C), DVM_OK);
    cr_assert_eq(dvm_cashu_verify(ctx, k, x, 32, C), DVM_OK);
    x[0] ^= 1;
    cr_assert_eq(dvm_cashu_verify(ctx, k, x, 32, C), DVM_ERR_CRYPTO);
    x[0] ^= 1;
    k[31] ^= 1;
    cr_assert_eq(dvm_cashu_verify(ctx, k, x, 32, C), DVM_ERR_CRYPTO);
    json_decref(j);
}

Test(nut00, rejects_bad_points_and_scalars)
{
    uint8_t k[32] = {0}, B_[33] = {0}, C_[33];
    k[31] = 1;
    B_[0] = 0x04; /* not a compressed prefix */
    cr_assert_eq(dvm_cashu_sign(ctx, k, B_, C_), DVM_ERR_CRYPTO);
    memset(k, 0, 32); /* zero scalar */
    uint8_t r0[32] = {0};
    cr_assert_eq(dvm_cashu_blind(ctx, (const uint8_t *)"x", 1, r0, B_), DVM_ERR_CRYPTO);
    memset(k, 0xff, 32); /* >= n */
    cr_assert_eq(dvm_cashu_scalar_check(ctx, k), DVM_ERR_CRYPTO);
}

TestSuite(nut01, .init = setup, .fini = teardown);

Test(nut01, keysets)
{
    json_t *j = load("nut-01.json");
    size_t i;
    json_t *v;
    char reason[160];
    json_array_foreach(json_object_get(j, "invalid"), i, v) {
        dvm_keyset ks;
        memset(&ks, 0, sizeof ks);
        reason[0] = 0;
        cr_assert_eq(dvm_cashu_keys_from_json(ctx, v, &ks, reason, sizeof reason),
                     DVM_ERR_INVALID, "invalid keyset %zu accepted", i);
        cr_assert(strlen(reason) > 0);
    }
    size_t n_valid = 0;
    json_array_foreach(json_object_get(j, "valid"), i, v) {
        dvm_keyset ks;
        memset(&ks, 0, sizeof ks);
        cr_assert_eq(dvm_cashu_keys_from_json(ctx, v, &ks, reason, sizeof reason), DVM_OK,
                     "%s", reason);
        cr_assert_eq((size_t)__builtin_popcountll(ks.present), json_object_size(v));
        n_valid++;
    }
    cr_assert_eq(n_valid, 2);
    /* The big keyset reaches 2^63 = 9223372036854775808. */
    dvm_keyset ks;
    memset(&ks, 0, sizeof ks);
    json_t *big = json_array_get(json_object_get(j, "valid"), 1);
    cr_assert_eq(dvm_cashu_keys_from_json(ctx, big, &ks, NULL, 0), DVM_OK);
    cr_assert_not_null(dvm_keyset_key(&ks, 9223372036854775808ULL));
    assert_hex(dvm_keyset_key(&ks, 9223372036854775808ULL), 33,
               str(big, "9223372036854775808"));
    json_decref(j);
}

Test(nut01, rejects_non_power_of_two_amount)
{
    json_t *k = json_pack("{s:s}", "3",
                          "03a40f20667ed53513075dc51e715ff2046cad64eb68960632269ba7f0210e38bc");
    dvm_keyset ks;
    char reason[128];
    cr_assert_eq(dvm_cashu_keys_from_json(ctx, k, &ks, reason, sizeof reason), DVM_ERR_INVALID);
    cr_assert(strstr(reason, "power of two"));
    json_decref(k);
}

TestSuite(nut02, .init = setup, .fini = teardown);

Test(nut02, keyset_id_v00)
{
    json_t *j = load("nut-02.json");
    size_t i;
    json_t *v;
    cr_assert_eq(json_array_size(json_object_get(j, "v00")), 2);
    json_array_foreach(json_object_get(j, "v00"), i, v) {
        dvm_keyset ks;
        memset(&ks, 0, sizeof ks);
        cr_assert_eq(dvm_cashu_keys_from_json(ctx, json_object_get(v, "keys"), &ks, NULL, 0),
                     DVM_OK);
        char id[17];
        dvm_keyset_id_v00(&ks, id);
        cr_assert_str_eq(id, str(v, "id"));
        strcpy(ks.id, id);
        cr_assert_eq(dvm_keyset_check_id(&ks), DVM_OK);
        ks.id[5] = ks.id[5] == 'a' ? 'b' : 'a';
        cr_assert_eq(dvm_keyset_check_id(&ks), DVM_ERR_INVALID);
    }
    json_decref(j);
}

Test(nut02, keyset_id_v01)
{
    json_t *j = load("nut-02.json");
    size_t i;
    json_t *v;
    cr_assert_eq(json_array_size(json_object_get(j, "v01")), 3);
    json_array_foreach(json_object_get(j, "v01"), i, v) {
        dvm_keyset ks;
        memset(&ks, 0, sizeof ks);
        cr_assert_eq(dvm_cashu_keys_from_json(ctx, json_object_get(v, "keys"), &ks, NULL, 0),
                     DVM_OK);
        snprintf(ks.unit, sizeof ks.unit, "%s", str(v, "unit"));
        ks.input_fee_ppk = (uint64_t)json_integer_value(json_object_get(v, "input_fee_ppk"));
        ks.final_expiry = (uint64_t)json_integer_value(json_object_get(v, "final_expiry"));
        char id[67];
        dvm_keyset_id_v01(&ks, id);
        cr_assert_str_eq(id, str(v, "id"));
    }
    json_decref(j);
}

Test(nut02, keyset_json_roundtrip_checks_id)
{
    json_t *j = load("nut-02.json");
    json_t *v = json_array_get(json_object_get(j, "v00"), 0);
    json_t *obj = json_pack("{s:s, s:s, s:O}", "id", str(v, "id"), "unit", "sat", "keys",
                            json_object_get(v, "keys"));
    dvm_keyset ks;
    char reason[160];
    cr_assert_eq(dvm_cashu_keyset_from_json(ctx, obj, &ks, reason, sizeof reason), DVM_OK, "%s",
                 reason);
    json_t *back = dvm_cashu_keyset_to_json(&ks);
    cr_assert(json_equal(back, obj));
    json_object_set_new(obj, "id", json_string("00ffffffffffffff"));
    cr_assert_eq(dvm_cashu_keyset_from_json(ctx, obj, &ks, reason, sizeof reason),
                 DVM_ERR_INVALID);
    cr_assert(strstr(reason, "does not match"));
    json_decref(back);
    json_decref(obj);
    json_decref(j);
}

TestSuite(nut12, .init = setup, .fini = teardown);

Test(nut12, hash_e)
{
    json_t *j = load("nut-12.json");
    json_t *v = json_object_get(j, "hash_e");
    uint8_t pts[4][33], e[32];
    hex(v, "R1", pts[0], 33);
    hex(v, "R2", pts[1], 33);
    hex(v, "K", pts[2], 33);
    hex(v, "C_", pts[3], 33);
    cr_assert_eq(dvm_cashu_hash_e(ctx, (const uint8_t(*)[33])pts, 4, e), DVM_OK);
    assert_hex(e, 32, str(v, "e"));
    json_decref(j);
}

Test(nut12, deterministic_nonce)
{
    json_t *j = load("nut-12.json");
    json_t *v = json_object_get(j, "nonce");
    uint8_t a[32], A[33], B_[33], C_[33], e[32];
    hex(v, "a", a, 32);
    hex(v, "B_", B_, 33);
    uint8_t Ak[33];
    cr_assert_eq(dvm_cashu_pubkey(ctx, a, Ak), DVM_OK);
    hex(v, "A", A, 33);
    cr_assert_eq(memcmp(A, Ak, 33), 0);
    cr_assert_eq(dvm_cashu_sign(ctx, a, B_, C_), DVM_OK);
    assert_hex(C_, 33, str(v, "C_"));
    dvm_dleq d;
    cr_assert_eq(dvm_cashu_dleq_prove(ctx, a, B_, C_, &d), DVM_OK);
    assert_hex(d.e, 32, str(v, "e"));
    assert_hex(d.s, 32, str(v, "s"));
    cr_assert_eq(dvm_cashu_dleq_verify_blind(ctx, A, B_, C_, d.e, d.s), DVM_OK);
    hex(v, "e", e, 32);
    cr_assert_eq(memcmp(e, d.e, 32), 0);
    json_decref(j);
}

Test(nut12, verify_blind_signature)
{
    json_t *j = load("nut-12.json");
    json_t *v = json_object_get(j, "blind_signature");
    uint8_t A[33], B_[33];
    hex(v, "A", A, 33);
    hex(v, "B_", B_, 33);
    dvm_blind_signature bs;
    char reason[128];
    cr_assert_eq(dvm_cashu_blind_signature_from_json(ctx, json_object_get(v, "blind_signature"),
                                                     &bs, reason, sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert(bs.has_dleq);
    cr_assert_eq(bs.amount, 8);
    cr_assert_eq(dvm_cashu_dleq_verify_blind(ctx, A, B_, bs.C_, bs.dleq.e, bs.dleq.s), DVM_OK);
    /* Tampering with e, s, B_ or the key breaks it. */
    bs.dleq.s[31] ^= 1;
    cr_assert_eq(dvm_cashu_dleq_verify_blind(ctx, A, B_, bs.C_, bs.dleq.e, bs.dleq.s),
                 DVM_ERR_CRYPTO);
    bs.dleq.s[31] ^= 1;
    bs.dleq.e[0] ^= 1;
    cr_assert_eq(dvm_cashu_dleq_verify_blind(ctx, A, B_, bs.C_, bs.dleq.e, bs.dleq.s),
                 DVM_ERR_CRYPTO);
    bs.dleq.e[0] ^= 1;
    cr_assert_eq(dvm_cashu_dleq_verify_blind(ctx, B_, A, bs.C_, bs.dleq.e, bs.dleq.s),
                 DVM_ERR_CRYPTO);
    json_decref(j);
}

Test(nut12, verify_proof)
{
    json_t *j = load("nut-12.json");
    json_t *v = json_object_get(j, "proof");
    uint8_t A[33];
    hex(v, "A", A, 33);
    dvm_proof p;
    char reason[128];
    cr_assert_eq(dvm_cashu_proof_from_json(ctx, json_object_get(v, "proof"), &p, reason,
                                           sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert(p.has_dleq && p.dleq.has_r);
    cr_assert_eq(dvm_cashu_dleq_verify_proof(ctx, A, &p), DVM_OK);
    /* Round trip through JSON keeps the dleq. */
    json_t *back = dvm_cashu_proof_to_json(&p);
    cr_assert(json_equal(back, json_object_get(v, "proof")));
    json_decref(back);
    /* A different secret, r or C fails. */
    dvm_proof q = p;
    q.secret[0] = q.secret[0] == 'd' ? 'e' : 'd';
    cr_assert_eq(dvm_cashu_dleq_verify_proof(ctx, A, &q), DVM_ERR_CRYPTO);
    q = p;
    q.dleq.r[31] ^= 1;
    cr_assert_eq(dvm_cashu_dleq_verify_proof(ctx, A, &q), DVM_ERR_CRYPTO);
    q = p;
    q.has_dleq = false;
    cr_assert_eq(dvm_cashu_dleq_verify_proof(ctx, A, &q), DVM_ERR_INVALID);
    json_decref(j);
}

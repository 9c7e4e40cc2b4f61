/* Cashu token codec (core/cashu/token.h): NUT-00 vectors, malformed input,
 * limits, and seeded round-trip properties for V3 and V4. */
#include <cbor.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"

#define VECTORS "fixtures/vectors/cashu/nut-00-tokens.json"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */

static json_t *load_vectors(void)
{
    json_error_t err;
    json_t *v = json_load_file(VECTORS, 0, &err);
    cr_assert_not_null(v, "cannot load %s: %s", VECTORS, err.text);
    return v;
}

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
    size_t got = 0;
    cr_assert_eq(sodium_hex2bin(out, n, hex, strlen(hex), NULL, &got, NULL), 0);
    cr_assert_eq(got, n, "hex %s is not %zu bytes", hex, n);
}

static dvm_err dec(const char *s, dvm_token *t, char *why)
{
    return dvm_token_decode(s, strlen(s), t, why, 256);
}

/* "cashuA" + base64url(json) without padding, computed with libsodium. */
static char *v3_of(const char *json)
{
    size_t n = strlen(json);
    size_t enc = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(6 + enc);
    memcpy(s, "cashuA", 6);
    sodium_bin2base64(s + 6, enc, (const unsigned char *)json, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

static char *v4_of(const uint8_t *cbor, size_t n)
{
    size_t enc = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(6 + enc);
    memcpy(s, "cashuB", 6);
    sodium_bin2base64(s + 6, enc, cbor, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

static size_t strip_pad(const char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        n--;
    return n;
}

/* Compare a decoded token with the JSON expectation of the fixture. */
static void expect_fields(const dvm_token *t, const json_t *x)
{
    cr_assert_eq(t->version, json_integer_value(json_object_get(x, "version")));
    cr_assert_str_eq(t->mint, json_string_value(json_object_get(x, "mint")));
    cr_assert_str_eq(t->unit, json_string_value(json_object_get(x, "unit")));
    const json_t *memo = json_object_get(x, "memo");
    if (json_is_string(memo)) {
        cr_assert(t->has_memo);
        cr_assert_str_eq(t->memo, json_string_value(memo));
    } else {
        cr_assert_not(t->has_memo);
    }
    const json_t *ps = json_object_get(x, "proofs");
    cr_assert_eq(t->n_proofs, json_array_size(ps));
    uint64_t sum = 0;
    for (size_t i = 0; i < t->n_proofs; i++) {
        const json_t *p = json_array_get(ps, i);
        const dvm_proof *q = &t->proofs[i];
        cr_assert_eq(q->amount, (uint64_t)json_integer_value(json_object_get(p, "amount")));
        cr_assert_str_eq(q->id, json_string_value(json_object_get(p, "id")));
        const char *sec = json_string_value(json_object_get(p, "secret"));
        cr_assert_eq(q->secret_len, strlen(sec));
        cr_assert_str_eq(q->secret, sec);
        uint8_t C[33];
        hex2bin(json_string_value(json_object_get(p, "C")), C, 33);
        cr_assert_arr_eq(q->C, C, 33, "proof %zu C", i);
        cr_assert_not(q->has_dleq);
        sum += q->amount;
    }
    uint64_t amount;
    cr_assert_eq(dvm_token_amount(t, &amount), DVM_OK);
    cr_assert_eq(amount, sum);
}

/* ---------------------------------------------------------------------- */
/* NUT-00 vectors                                                          */

Test(token_vectors, valid_decode_to_the_exact_fields_and_encode_back)
{
    json_t *v = load_vectors();
    const json_t *valid = json_object_get(v, "valid");
    cr_assert_gt(json_array_size(valid), 4);
    for (size_t i = 0; i < json_array_size(valid); i++) {
        const json_t *c = json_array_get(valid, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *s = json_string_value(json_object_get(c, "token"));
        dvm_token t;
        char why[256];
        dvm_err e = dec(s, &t, why);
        cr_assert_eq(e, DVM_OK, "%s: %s", name, why);
        expect_fields(&t, json_object_get(c, "expect"));

        /* Encoding back gives the vector (base64 padding aside). */
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, t.version, &b), DVM_OK, "%s", name);
        size_t n = strip_pad(s);
        cr_assert_eq(b.len, n, "%s: encoded %zu chars, vector %zu", name, b.len, n);
        cr_assert(memcmp(b.data, s, n) == 0, "%s: encoding differs:\n%.*s\n%s", name, (int)b.len,
                  (const char *)b.data, s);

        /* And into the other version, which decodes to the same token. */
        dvm_buf_reset(&b);
        cr_assert_eq(dvm_token_encode(&t, t.version == 3 ? 4 : 3, &b), DVM_OK);
        dvm_token u;
        cr_assert_eq(dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why), DVM_OK,
                     "%s: %s", name, why);
        cr_assert_neq(u.version, t.version);
        cr_assert(dvm_token_equal(&t, &u), "%s: cross-version round trip", name);
        dvm_token_free(&u);
        dvm_buf_free(&b);
        dvm_token_free(&t);
    }
    json_decref(v);
}

Test(token_vectors, invalid_are_rejected_with_a_reason)
{
    json_t *v = load_vectors();
    const json_t *bad = json_object_get(v, "invalid");
    cr_assert_geq(json_array_size(bad), 2);
    for (size_t i = 0; i < json_array_size(bad); i++) {
        const json_t *c = json_array_get(bad, i);
        dvm_token t;
        char why[256] = "";
        dvm_err e = dec(json_string_value(json_object_get(c, "token")), &t, why);
        cr_assert_eq(e, DVM_ERR_INVALID, "%s", json_string_value(json_object_get(c, "name")));
        cr_assert_gt(strlen(why), 0);
        cr_assert_null(t.proofs);
    }
    json_decref(v);
}

Test(token_vectors, raw_binary_v4)
{
    json_t *v = load_vectors();
    const json_t *raw = json_array_get(json_object_get(v, "raw"), 0);
    const char *hex = json_string_value(json_object_get(raw, "hex"));
    size_t n = strlen(hex) / 2;
    uint8_t *bin = malloc(n);
    hex2bin(hex, bin, n);
    dvm_token t;
    char why[256];
    cr_assert_eq(dvm_token_decode_raw(bin, n, &t, why, sizeof why), DVM_OK, "%s", why);
    expect_fields(&t, json_object_get(raw, "expect"));
    dvm_buf b;
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_token_encode_raw(&t, &b), DVM_OK);
    cr_assert_eq(b.len, n);
    cr_assert_arr_eq(b.data, bin, n);
    /* A raw token with another version byte is unsupported. */
    bin[4] = 'A';
    dvm_token u;
    cr_assert_eq(dvm_token_decode_raw(bin, n, &u, why, sizeof why), DVM_ERR_UNSUPPORTED);
    dvm_buf_free(&b);
    dvm_token_free(&t);
    free(bin);
    json_decref(v);
}

/* ---------------------------------------------------------------------- */
/* V3 details and malformed JSON                                           */

#define C1 "02bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"
#define C2 "029e8e5050b890a7d6c0968db16bc1d5d5fa040ea1de284f6ec69d61299f671059"
#define E32 "1111111111111111111111111111111111111111111111111111111111111111"
#define S32 "2222222222222222222222222222222222222222222222222222222222222222"
#define R32 "3333333333333333333333333333333333333333333333333333333333333333"
#define PROOF(amount, id, secret, C) \
    "{\"amount\":" amount ",\"id\":\"" id "\",\"secret\":\"" secret "\",\"C\":\"" C "\"}"
#define ONE_PROOF PROOF("2", "009a1f293253e41e", "s1", C1)
#define V3(proofs, rest) "{\"token\":[{\"mint\":\"https://m.example\",\"proofs\":[" proofs "]}]" rest "}"

static dvm_err dec_v3(const char *json, dvm_token *t, char *why)
{
    char *s = v3_of(json);
    dvm_err e = dec(s, t, why);
    free(s);
    return e;
}

static void expect_v3_err(const char *json, dvm_err want, const char *needle)
{
    dvm_token t;
    char why[256] = "";
    dvm_err e = dec_v3(json, &t, why);
    cr_assert_eq(e, want, "json %s: got %d (%s), want %d", json, e, why, want);
    cr_assert_null(t.proofs);
    cr_assert_eq(t.n_proofs, 0);
    if (needle)
        cr_assert(strstr(why, needle), "reason '%s' lacks '%s'", why, needle);
}

Test(token_v3, unit_defaults_to_sat_and_memo_absent)
{
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_v3(V3(ONE_PROOF, ""), &t, why), DVM_OK, "%s", why);
    cr_assert_str_eq(t.unit, "sat");
    cr_assert_not(t.has_unit);
    cr_assert_not(t.has_memo);
    cr_assert_str_eq(t.memo, "");
    cr_assert_eq(t.version, 3);
    dvm_token_free(&t);

    cr_assert_eq(dec_v3(V3(ONE_PROOF, ",\"unit\":\"usd\",\"memo\":\"\""), &t, why), DVM_OK);
    cr_assert_str_eq(t.unit, "usd");
    cr_assert(t.has_unit);
    cr_assert(t.has_memo);
    cr_assert_str_eq(t.memo, "");
    dvm_token_free(&t);
}

Test(token_v3, dleq_witness_and_unknown_fields)
{
    const char *json =
        "{\"token\":[{\"mint\":\"https://m.example\",\"proofs\":["
        "{\"amount\":4,\"id\":\"00AD268C4D1F5826\",\"secret\":\"x\",\"C\":\"" C1 "\","
        "\"dleq\":{\"e\":\"" E32 "\",\"s\":\"" S32 "\",\"r\":\"" R32 "\"},"
        "\"witness\":\"{\\\"signatures\\\":[]}\",\"future\":[1,2]},"
        "{\"amount\":8,\"id\":\"00ad268c4d1f5826\",\"secret\":\"y\",\"C\":\"" C2 "\","
        "\"dleq\":{\"e\":\"" E32 "\",\"s\":\"" S32 "\"}}"
        "]}],\"extra\":{\"a\":1}}";
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_v3(json, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.n_proofs, 2);
    cr_assert_str_eq(t.proofs[0].id, "00ad268c4d1f5826"); /* stored lowercase */
    cr_assert(t.proofs[0].has_dleq);
    cr_assert(t.proofs[0].dleq.has_r);
    uint8_t e[32], s[32], r[32];
    hex2bin(E32, e, 32);
    hex2bin(S32, s, 32);
    hex2bin(R32, r, 32);
    cr_assert_arr_eq(t.proofs[0].dleq.e, e, 32);
    cr_assert_arr_eq(t.proofs[0].dleq.s, s, 32);
    cr_assert_arr_eq(t.proofs[0].dleq.r, r, 32);
    cr_assert(t.proofs[1].has_dleq);
    cr_assert_not(t.proofs[1].dleq.has_r);
    uint64_t amount;
    cr_assert_eq(dvm_token_amount(&t, &amount), DVM_OK);
    cr_assert_eq(amount, 12);

    /* The dleq survives both encodings. */
    for (int v = 3; v <= 4; v++) {
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, v, &b), DVM_OK);
        dvm_token u;
        cr_assert_eq(dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why), DVM_OK);
        cr_assert(dvm_token_equal(&t, &u));
        cr_assert_arr_eq(u.proofs[0].dleq.r, r, 32);
        dvm_token_free(&u);
        dvm_buf_free(&b);
    }
    dvm_token_free(&t);
}

Test(token_v3, several_entries_of_one_mint_merge_several_mints_unsupported)
{
    const char *same = "{\"token\":[{\"mint\":\"https://a\",\"proofs\":[" ONE_PROOF "]},"
                       "{\"mint\":\"https://a\",\"proofs\":[" PROOF("8", "00ff", "s2", C2) "]}]}";
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_v3(same, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.n_proofs, 2);
    cr_assert_str_eq(t.proofs[0].secret, "s1");
    cr_assert_str_eq(t.proofs[1].secret, "s2");
    cr_assert_str_eq(t.proofs[1].id, "00ff");
    dvm_token_free(&t);

    expect_v3_err("{\"token\":[{\"mint\":\"https://a\",\"proofs\":[" ONE_PROOF "]},"
                  "{\"mint\":\"https://b\",\"proofs\":[" ONE_PROOF "]}]}",
                  DVM_ERR_UNSUPPORTED, "several mints");
}

Test(token_v3, malformed_json_and_fields)
{
    expect_v3_err("hello", DVM_ERR_INVALID, "JSON");
    expect_v3_err("[1,2]", DVM_ERR_INVALID, NULL);
    expect_v3_err("{\"unit\":\"sat\"}", DVM_ERR_INVALID, "token");
    expect_v3_err("{\"token\":[]}", DVM_ERR_INVALID, "token");
    expect_v3_err("{\"token\":{}}", DVM_ERR_INVALID, "token");
    expect_v3_err("{\"token\":[{\"mint\":\"https://a\",\"proofs\":[]}]}", DVM_ERR_INVALID, "proofs");
    expect_v3_err("{\"token\":[{\"proofs\":[" ONE_PROOF "]}]}", DVM_ERR_INVALID, "mint");
    expect_v3_err("{\"token\":[{\"mint\":\"\",\"proofs\":[" ONE_PROOF "]}]}", DVM_ERR_INVALID, "mint");
    expect_v3_err("{\"token\":[{\"mint\":7,\"proofs\":[" ONE_PROOF "]}]}", DVM_ERR_INVALID, "mint");
    expect_v3_err("{\"token\":[\"x\"]}", DVM_ERR_INVALID, NULL);
    /* amounts */
    expect_v3_err(V3(PROOF("-1", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("0", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("2.5", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("2.0", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("\"2\"", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("9007199254740992", "00ff", "s", C1), ""), DVM_ERR_INVALID, "amount");
    expect_v3_err(V3(PROOF("100000000000000000000000", "00ff", "s", C1), ""), DVM_ERR_INVALID, NULL);
    expect_v3_err(V3(PROOF("9007199254740991", "00ff", "a", C1) "," PROOF("1", "00ff", "b", C1), ""),
                  DVM_ERR_INVALID, "2^53");
    /* keyset ids */
    expect_v3_err(V3(PROOF("1", "I2yN+iRYfkzT", "s", C1), ""), DVM_ERR_INVALID, "keyset id");
    expect_v3_err(V3(PROOF("1", "00f", "s", C1), ""), DVM_ERR_INVALID, "keyset id");
    expect_v3_err(V3(PROOF("1", "", "s", C1), ""), DVM_ERR_INVALID, "keyset id");
    expect_v3_err(V3(PROOF("1", "0000000000000000000000000000000000000000000000000000000000000000"
                                "0000",
                           "s", C1),
                     ""),
                  DVM_ERR_TOO_LARGE, "keyset id");
    /* C */
    expect_v3_err(V3(PROOF("1", "00ff", "s", "02bc9097"), ""), DVM_ERR_INVALID, "C");
    expect_v3_err(V3(PROOF("1", "00ff", "s", C1 "00"), ""), DVM_ERR_INVALID, "C");
    expect_v3_err(V3(PROOF("1", "00ff", "s",
                           "04bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"),
                     ""),
                  DVM_ERR_INVALID, "compressed");
    expect_v3_err(V3(PROOF("1", "00ff", "s",
                           "02zz9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"),
                     ""),
                  DVM_ERR_INVALID, "hex");
    expect_v3_err(V3("{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\"}", ""), DVM_ERR_INVALID, "C");
    /* secret */
    expect_v3_err(V3(PROOF("1", "00ff", "", C1), ""), DVM_ERR_INVALID, "secret");
    expect_v3_err(V3("{\"amount\":1,\"id\":\"00ff\",\"secret\":5,\"C\":\"" C1 "\"}", ""),
                  DVM_ERR_INVALID, "secret");
    expect_v3_err(V3(PROOF("1", "00ff", "a\\u0000b", C1), ""), DVM_ERR_INVALID, NULL);
    /* dleq */
    expect_v3_err(V3("{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"" C1
                     "\",\"dleq\":{\"e\":\"" E32 "\"}}",
                     ""),
                  DVM_ERR_INVALID, "\"dleq.s\"");
    expect_v3_err(V3("{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"" C1
                     "\",\"dleq\":{\"e\":\"11\",\"s\":\"" S32 "\"}}",
                     ""),
                  DVM_ERR_INVALID, "\"dleq.e\"");
    expect_v3_err(V3("{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"" C1
                     "\",\"dleq\":\"yes\"}",
                     ""),
                  DVM_ERR_INVALID, "dleq");
    /* duplicates, unit, memo */
    expect_v3_err(V3(ONE_PROOF, ",\"unit\":\"sat\",\"unit\":\"usd\""), DVM_ERR_INVALID, NULL);
    expect_v3_err(V3(ONE_PROOF, ",\"unit\":5"), DVM_ERR_INVALID, "unit");
    expect_v3_err(V3(ONE_PROOF, ",\"unit\":\"\""), DVM_ERR_INVALID, "unit");
    expect_v3_err(V3(ONE_PROOF, ",\"unit\":\"aaaaaaaaaaaaaaaaa\""), DVM_ERR_TOO_LARGE, "unit");
    expect_v3_err(V3(ONE_PROOF, ",\"memo\":[]"), DVM_ERR_INVALID, "memo");
}

Test(token_v3, field_limits)
{
    /* secret of exactly DVM_SECRET_MAX bytes passes, one more is too large */
    char sec[DVM_SECRET_MAX + 2];
    memset(sec, 'a', sizeof sec - 1);
    sec[DVM_SECRET_MAX + 1] = '\0';
    char *json = malloc(4096);
    snprintf(json, 4096, V3(PROOF("1", "00ff", "%s", C1), ""), sec);
    expect_v3_err(json, DVM_ERR_TOO_LARGE, "secret");
    sec[DVM_SECRET_MAX] = '\0';
    snprintf(json, 4096, V3(PROOF("1", "00ff", "%s", C1), ""), sec);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_v3(json, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.proofs[0].secret_len, DVM_SECRET_MAX);
    dvm_token_free(&t);
    /* mint */
    char mint[DVM_MINT_URL_MAX + 2];
    memset(mint, 'm', sizeof mint - 1);
    mint[DVM_MINT_URL_MAX + 1] = '\0';
    snprintf(json, 4096, "{\"token\":[{\"mint\":\"%s\",\"proofs\":[" ONE_PROOF "]}]}", mint);
    expect_v3_err(json, DVM_ERR_TOO_LARGE, "mint");
    /* memo */
    char *memo = malloc(DVM_MEMO_MAX + 2);
    memset(memo, 'x', DVM_MEMO_MAX + 1);
    memo[DVM_MEMO_MAX + 1] = '\0';
    snprintf(json, 4096, V3(ONE_PROOF, ",\"memo\":\"%s\""), memo);
    expect_v3_err(json, DVM_ERR_TOO_LARGE, "memo");
    free(memo);
    free(json);
}

/* n proofs in one V3 entry. */
static char *v3_with_proofs(size_t n)
{
    size_t cap = 64 + n * 200;
    char *json = malloc(cap);
    size_t off = (size_t)snprintf(json, cap, "{\"token\":[{\"mint\":\"https://a\",\"proofs\":[");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(json + off, cap - off, "%s" PROOF("1", "00ff", "s%zu", C1),
                                i ? "," : "", i);
    snprintf(json + off, cap - off, "]}]}");
    return json;
}

Test(token_v3, proof_count_limit)
{
    char *json = v3_with_proofs(DVM_TOKEN_MAX_PROOFS);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_v3(json, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.n_proofs, DVM_TOKEN_MAX_PROOFS);
    dvm_token_free(&t);
    free(json);
    json = v3_with_proofs(DVM_TOKEN_MAX_PROOFS + 1);
    expect_v3_err(json, DVM_ERR_TOO_LARGE, "proofs");
    free(json);
}

/* ---------------------------------------------------------------------- */
/* prefixes and base64                                                     */

static const char *vector_token(const char *name)
{
    static char buf[4096];
    json_t *v = load_vectors();
    const json_t *valid = json_object_get(v, "valid");
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(valid); i++) {
        const json_t *c = json_array_get(valid, i);
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(c, "token")));
    }
    json_decref(v);
    cr_assert_neq(buf[0], '\0', "no vector %s", name);
    return buf;
}

static void expect_err(const char *s, size_t len, dvm_err want, const char *needle)
{
    dvm_token t;
    char why[256] = "";
    dvm_err e = dvm_token_decode(s, len, &t, why, sizeof why);
    cr_assert_eq(e, want, "'%.40s': got %d (%s), want %d", s, e, why, want);
    cr_assert_null(t.proofs);
    if (needle)
        cr_assert(strstr(why, needle), "reason '%s' lacks '%s'", why, needle);
}

Test(token_b64, prefixes)
{
    char s[4096];
    const char *v4 = vector_token("v4 multiple keysets");
    dvm_token a, b;
    char why[256];
    cr_assert_eq(dec(v4, &a, why), DVM_OK);
    snprintf(s, sizeof s, "cashu:%s", v4);
    cr_assert_eq(dec(s, &b, why), DVM_OK, "%s", why);
    cr_assert(dvm_token_equal(&a, &b));
    dvm_token_free(&b);
    dvm_token_free(&a);

    expect_err("", 0, DVM_ERR_INVALID, "prefix");
    expect_err("cashu", 5, DVM_ERR_INVALID, "prefix");
    expect_err("cashuA", 6, DVM_ERR_INVALID, "empty");
    expect_err("cashuB==", 8, DVM_ERR_INVALID, "empty");
    expect_err("Cashu", 5, DVM_ERR_INVALID, "prefix");
    snprintf(s, sizeof s, "cashuC%s", v4 + 6);
    expect_err(s, strlen(s), DVM_ERR_UNSUPPORTED, "version");
    snprintf(s, sizeof s, "cashuA%s", v4 + 6); /* CBOR where JSON is expected */
    expect_err(s, strlen(s), DVM_ERR_INVALID, "JSON");
}

Test(token_b64, alphabets_and_padding)
{
    char s[4096], why[256];
    const char *v4 = vector_token("v4 multiple keysets");
    cr_assert(strchr(v4, '_') && strchr(v4, '-'), "vector should use url-safe characters");
    dvm_token a, b;
    cr_assert_eq(dec(v4, &a, why), DVM_OK);
    /* Standard alphabet: same token. */
    snprintf(s, sizeof s, "%s", v4);
    for (char *p = s; *p; p++)
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    cr_assert_eq(dec(s, &b, why), DVM_OK, "%s", why);
    cr_assert(dvm_token_equal(&a, &b));
    dvm_token_free(&b);
    /* The vector has 2 chars in its last quantum: "==" is the right padding. */
    size_t n = strlen(v4);
    cr_assert_eq((n - 6) % 4, 2);
    snprintf(s, sizeof s, "%s==", v4);
    cr_assert_eq(dec(s, &b, why), DVM_OK, "%s", why);
    cr_assert(dvm_token_equal(&a, &b));
    dvm_token_free(&b);
    snprintf(s, sizeof s, "%s=", v4);
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    snprintf(s, sizeof s, "%s===", v4);
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    snprintf(s, sizeof s, "%s", v4);
    s[20] = '*';
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    snprintf(s, sizeof s, "%s", v4);
    s[20] = ' ';
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    snprintf(s, sizeof s, "%sA", v4); /* 3 chars in the last quantum: extra CBOR byte */
    expect_err(s, strlen(s), DVM_ERR_INVALID, NULL);
    snprintf(s, sizeof s, "%sAAA", v4); /* 4n+1 characters */
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    /* Non-zero leftover bits in the last character. */
    snprintf(s, sizeof s, "%s", v4);
    char *last = s + strlen(s) - 1;
    cr_assert_eq(*last, 'A');
    *last = 'B';
    expect_err(s, strlen(s), DVM_ERR_INVALID, "base64");
    /* Length limit, checked before anything else. */
    size_t big = DVM_TOKEN_MAX_BYTES + 1;
    char *huge = malloc(big);
    memcpy(huge, "cashuB", 6);
    memset(huge + 6, 'A', big - 6);
    expect_err(huge, big, DVM_ERR_TOO_LARGE, "over");
    free(huge);
    dvm_token_free(&a);
}

/* ---------------------------------------------------------------------- */
/* V4: CBOR written by hand in the test                                    */

typedef struct cb {
    uint8_t d[1 << 16];
    size_t n;
} cb;

static void cb_head(cb *c, int major, uint64_t v)
{
    uint8_t m = (uint8_t)(major << 5);
    if (v < 24) {
        c->d[c->n++] = m | (uint8_t)v;
    } else if (v < 256) {
        c->d[c->n++] = m | 24;
        c->d[c->n++] = (uint8_t)v;
    } else if (v < 65536) {
        c->d[c->n++] = m | 25;
        c->d[c->n++] = (uint8_t)(v >> 8);
        c->d[c->n++] = (uint8_t)v;
    } else {
        c->d[c->n++] = m | 27;
        for (int i = 7; i >= 0; i--)
            c->d[c->n++] = (uint8_t)(v >> (8 * i));
    }
}
static void cb_text(cb *c, const char *s)
{
    cb_head(c, 3, strlen(s));
    memcpy(c->d + c->n, s, strlen(s));
    c->n += strlen(s);
}
static void cb_bytes(cb *c, const uint8_t *b, size_t n)
{
    cb_head(c, 2, n);
    memcpy(c->d + c->n, b, n);
    c->n += n;
}
static void cb_hex(cb *c, const char *hex)
{
    uint8_t b[64];
    size_t n = strlen(hex) / 2;
    hex2bin(hex, b, n);
    cb_bytes(c, b, n);
}
static void cb_raw(cb *c, uint8_t byte) { c->d[c->n++] = byte; }

/* A proof map {a, s, c} with the given amount encoding already chosen. */
static void cb_proof(cb *c, uint64_t a, const char *s, const char *C)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_head(c, 0, a);
    cb_text(c, "s");
    cb_text(c, s);
    cb_text(c, "c");
    cb_hex(c, C);
}

static dvm_err dec_cb(const cb *c, dvm_token *t, char *why)
{
    char *s = v4_of(c->d, c->n);
    dvm_err e = dec(s, t, why);
    free(s);
    return e;
}

static void expect_cb_err(const cb *c, dvm_err want, const char *needle)
{
    dvm_token t;
    char why[256] = "";
    dvm_err e = dec_cb(c, &t, why);
    cr_assert_eq(e, want, "got %d (%s), want %d", e, why, want);
    cr_assert_null(t.proofs);
    if (needle)
        cr_assert(strstr(why, needle), "reason '%s' lacks '%s'", why, needle);
}

/* {"m": mint, "u": "sat", "t": [{"i": 00ff, "p": [proof]}]} with the
 * proof written by `proof` (NULL: a good one). */
static void cb_token(cb *c, void (*proof)(cb *))
{
    c->n = 0;
    cb_head(c, 5, 3);
    cb_text(c, "m");
    cb_text(c, "https://m.example");
    cb_text(c, "u");
    cb_text(c, "sat");
    cb_text(c, "t");
    cb_head(c, 4, 1);
    cb_head(c, 5, 2);
    cb_text(c, "i");
    cb_hex(c, "00ff");
    cb_text(c, "p");
    cb_head(c, 4, 1);
    if (proof)
        proof(c);
    else
        cb_proof(c, 4, "sec", C1);
}

Test(token_v4, hand_written_cbor_decodes)
{
    cb c;
    cb_token(&c, NULL);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_cb(&c, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.version, 4);
    cr_assert_str_eq(t.mint, "https://m.example");
    cr_assert(t.has_unit);
    cr_assert_not(t.has_memo);
    cr_assert_eq(t.n_proofs, 1);
    cr_assert_eq(t.proofs[0].amount, 4);
    cr_assert_str_eq(t.proofs[0].id, "00ff");
    cr_assert_str_eq(t.proofs[0].secret, "sec");
    dvm_token_free(&t);
}

static void p_dleq_witness(cb *c)
{
    cb_head(c, 5, 6);
    cb_text(c, "w"); /* witness first: ignored */
    cb_text(c, "{\"signatures\":[\"ab\"]}");
    cb_text(c, "a");
    cb_head(c, 0, 1000);
    cb_text(c, "zz"); /* unknown key */
    cb_head(c, 4, 2);
    cb_head(c, 0, 1);
    cb_head(c, 1, 5);
    cb_text(c, "s");
    cb_text(c, "sec");
    cb_text(c, "c");
    cb_hex(c, C2);
    cb_text(c, "d");
    cb_head(c, 5, 3);
    cb_text(c, "r");
    cb_hex(c, R32);
    cb_text(c, "e");
    cb_hex(c, E32);
    cb_text(c, "s");
    cb_hex(c, S32);
}

Test(token_v4, dleq_witness_unknown_keys_any_order)
{
    cb c;
    cb_token(&c, p_dleq_witness);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_cb(&c, &t, why), DVM_OK, "%s", why);
    const dvm_proof *p = &t.proofs[0];
    cr_assert_eq(p->amount, 1000);
    cr_assert(p->has_dleq);
    cr_assert(p->dleq.has_r);
    uint8_t e[32], s[32], r[32];
    hex2bin(E32, e, 32);
    hex2bin(S32, s, 32);
    hex2bin(R32, r, 32);
    cr_assert_arr_eq(p->dleq.e, e, 32);
    cr_assert_arr_eq(p->dleq.s, s, 32);
    cr_assert_arr_eq(p->dleq.r, r, 32);
    dvm_token_free(&t);
}

Test(token_v4, indefinite_lengths_are_accepted)
{
    cb c = {.n = 0};
    cb_raw(&c, 0xbf); /* indefinite map */
    cb_text(&c, "m");
    cb_raw(&c, 0x7f); /* chunked text "https://" + "m" */
    cb_text(&c, "https://");
    cb_text(&c, "m");
    cb_raw(&c, 0xff);
    cb_text(&c, "u");
    cb_text(&c, "sat");
    cb_text(&c, "t");
    cb_raw(&c, 0x9f); /* indefinite array */
    cb_head(&c, 5, 2);
    cb_text(&c, "i");
    cb_raw(&c, 0x5f); /* chunked bytes 00 ff */
    cb_hex(&c, "00");
    cb_hex(&c, "ff");
    cb_raw(&c, 0xff);
    cb_text(&c, "p");
    cb_raw(&c, 0x9f);
    cb_proof(&c, 2, "s", C1);
    cb_raw(&c, 0xff);
    cb_raw(&c, 0xff);
    cb_raw(&c, 0xff);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_cb(&c, &t, why), DVM_OK, "%s", why);
    cr_assert_str_eq(t.mint, "https://m");
    cr_assert_str_eq(t.proofs[0].id, "00ff");
    cr_assert_eq(t.proofs[0].amount, 2);
    dvm_token_free(&t);
}

static void p_wide_amount(cb *c) /* amount 8 written in 8 bytes: not shortest, still valid */
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_raw(c, 0x1b);
    for (int i = 0; i < 7; i++)
        cb_raw(c, 0);
    cb_raw(c, 8);
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
}

Test(token_v4, integers_of_any_width)
{
    cb c;
    cb_token(&c, p_wide_amount);
    dvm_token t;
    char why[256];
    cr_assert_eq(dec_cb(&c, &t, why), DVM_OK, "%s", why);
    cr_assert_eq(t.proofs[0].amount, 8);
    dvm_token_free(&t);
}

static void p_negative(cb *c)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_head(c, 1, 0); /* -1 */
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
}
static void p_text_amount(cb *c)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_text(c, "1");
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
}
static void p_float_amount(cb *c)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_raw(c, 0xf9); /* half float 1.0 */
    cb_raw(c, 0x3c);
    cb_raw(c, 0x00);
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
}
static void p_zero(cb *c) { cb_proof(c, 0, "s", C1); }
static void p_huge(cb *c) { cb_proof(c, 9007199254740992ULL, "s", C1); }
static void p_max64(cb *c) { cb_proof(c, UINT64_MAX, "s", C1); }
static void p_short_c(cb *c) { cb_proof(c, 1, "s", "02bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163"); }
static void p_bad_prefix(cb *c) { cb_proof(c, 1, "s", "05bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"); }
static void p_empty_secret(cb *c) { cb_proof(c, 1, "", C1); }
static void p_bad_utf8(cb *c) { cb_proof(c, 1, "a\xc3(b", C1); }
static void p_overlong(cb *c) { cb_proof(c, 1, "\xc0\xaf", C1); }
static void p_surrogate(cb *c) { cb_proof(c, 1, "\xed\xa0\x80", C1); }
static void p_nul_secret(cb *c)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_head(c, 0, 1);
    cb_text(c, "s");
    cb_head(c, 3, 3);
    cb_raw(c, 'a');
    cb_raw(c, 0);
    cb_raw(c, 'b');
    cb_text(c, "c");
    cb_hex(c, C1);
}
static void p_missing_c(cb *c)
{
    cb_head(c, 5, 2);
    cb_text(c, "a");
    cb_head(c, 0, 1);
    cb_text(c, "s");
    cb_text(c, "s");
}
static void p_c_as_text(cb *c)
{
    cb_head(c, 5, 3);
    cb_text(c, "a");
    cb_head(c, 0, 1);
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_text(c, C1);
}
static void p_dup_key(cb *c)
{
    cb_head(c, 5, 4);
    cb_text(c, "a");
    cb_head(c, 0, 1);
    cb_text(c, "a");
    cb_head(c, 0, 2);
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
}
static void p_short_dleq(cb *c)
{
    cb_head(c, 5, 4);
    cb_text(c, "a");
    cb_head(c, 0, 1);
    cb_text(c, "s");
    cb_text(c, "s");
    cb_text(c, "c");
    cb_hex(c, C1);
    cb_text(c, "d");
    cb_head(c, 5, 2);
    cb_text(c, "e");
    cb_hex(c, "11");
    cb_text(c, "s");
    cb_hex(c, S32);
}
static void p_not_map(cb *c) { cb_text(c, "proof"); }

Test(token_v4, malformed_proofs)
{
    cb c;
    cb_token(&c, p_negative);
    expect_cb_err(&c, DVM_ERR_INVALID, "negative");
    cb_token(&c, p_text_amount);
    expect_cb_err(&c, DVM_ERR_INVALID, "amount");
    cb_token(&c, p_float_amount);
    expect_cb_err(&c, DVM_ERR_INVALID, "amount");
    cb_token(&c, p_zero);
    expect_cb_err(&c, DVM_ERR_INVALID, "amount");
    cb_token(&c, p_huge);
    expect_cb_err(&c, DVM_ERR_INVALID, "amount");
    cb_token(&c, p_max64);
    expect_cb_err(&c, DVM_ERR_INVALID, "amount");
    cb_token(&c, p_short_c);
    expect_cb_err(&c, DVM_ERR_INVALID, "33 bytes");
    cb_token(&c, p_bad_prefix);
    expect_cb_err(&c, DVM_ERR_INVALID, "compressed");
    cb_token(&c, p_empty_secret);
    expect_cb_err(&c, DVM_ERR_INVALID, "secret");
    /* (libcbor or our own check may be the one that refuses bad UTF-8) */
    cb_token(&c, p_bad_utf8);
    expect_cb_err(&c, DVM_ERR_INVALID, NULL);
    cb_token(&c, p_overlong);
    expect_cb_err(&c, DVM_ERR_INVALID, NULL);
    cb_token(&c, p_surrogate);
    expect_cb_err(&c, DVM_ERR_INVALID, NULL);
    cb_token(&c, p_nul_secret);
    expect_cb_err(&c, DVM_ERR_INVALID, "NUL");
    cb_token(&c, p_missing_c);
    expect_cb_err(&c, DVM_ERR_INVALID, "\"c\"");
    cb_token(&c, p_c_as_text);
    expect_cb_err(&c, DVM_ERR_INVALID, "byte string");
    cb_token(&c, p_dup_key);
    expect_cb_err(&c, DVM_ERR_INVALID, "duplicate");
    cb_token(&c, p_short_dleq);
    expect_cb_err(&c, DVM_ERR_INVALID, "32 bytes");
    cb_token(&c, p_not_map);
    expect_cb_err(&c, DVM_ERR_INVALID, "map");
}

Test(token_v4, malformed_structure)
{
    cb c;
    /* not a map */
    c.n = 0;
    cb_head(&c, 4, 0);
    expect_cb_err(&c, DVM_ERR_INVALID, "map");
    /* missing m */
    c.n = 0;
    cb_head(&c, 5, 1);
    cb_text(&c, "u");
    cb_text(&c, "sat");
    expect_cb_err(&c, DVM_ERR_INVALID, "\"m\"");
    /* empty t */
    c.n = 0;
    cb_head(&c, 5, 3);
    cb_text(&c, "m");
    cb_text(&c, "https://m");
    cb_text(&c, "u");
    cb_text(&c, "sat");
    cb_text(&c, "t");
    cb_head(&c, 4, 0);
    expect_cb_err(&c, DVM_ERR_INVALID, "\"t\"");
    /* empty p */
    c.n = 0;
    cb_head(&c, 5, 3);
    cb_text(&c, "m");
    cb_text(&c, "https://m");
    cb_text(&c, "u");
    cb_text(&c, "sat");
    cb_text(&c, "t");
    cb_head(&c, 4, 1);
    cb_head(&c, 5, 2);
    cb_text(&c, "i");
    cb_hex(&c, "00ff");
    cb_text(&c, "p");
    cb_head(&c, 4, 0);
    expect_cb_err(&c, DVM_ERR_INVALID, "\"p\"");
    /* keyset id as text, and too long */
    for (int k = 0; k < 2; k++) {
        c.n = 0;
        cb_head(&c, 5, 3);
        cb_text(&c, "m");
        cb_text(&c, "https://m");
        cb_text(&c, "u");
        cb_text(&c, "sat");
        cb_text(&c, "t");
        cb_head(&c, 4, 1);
        cb_head(&c, 5, 2);
        cb_text(&c, "i");
        if (k == 0) {
            cb_text(&c, "00ff");
        } else {
            uint8_t id[34] = {0};
            cb_bytes(&c, id, sizeof id);
        }
        cb_text(&c, "p");
        cb_head(&c, 4, 1);
        cb_proof(&c, 1, "s", C1);
        expect_cb_err(&c, DVM_ERR_INVALID, "keyset id");
    }
    /* a tag around the token */
    cb_token(&c, NULL);
    memmove(c.d + 1, c.d, c.n);
    c.d[0] = 0xd0; /* major type 6 (tag), value 16 */
    c.n++;
    expect_cb_err(&c, DVM_ERR_INVALID, "CBOR"); /* libcbor 0.8 calls tags malformed */
    /* trailing byte */
    cb_token(&c, NULL);
    cb_raw(&c, 0x00);
    expect_cb_err(&c, DVM_ERR_INVALID, "trailing");
    /* truncated */
    cb_token(&c, NULL);
    c.n -= 3;
    expect_cb_err(&c, DVM_ERR_INVALID, "CBOR");
    /* a declared array far larger than the input */
    c.n = 0;
    cb_head(&c, 5, 1);
    cb_text(&c, "t");
    cb_raw(&c, 0x9b);
    for (int i = 0; i < 8; i++)
        cb_raw(&c, 0xff);
    expect_cb_err(&c, DVM_ERR_INVALID, "larger");
    c.n = 0;
    cb_raw(&c, 0xbb); /* map of 2^64-1 pairs */
    for (int i = 0; i < 8; i++)
        cb_raw(&c, 0xff);
    expect_cb_err(&c, DVM_ERR_INVALID, "larger");
    /* nesting: an unknown field nested 40 deep */
    c.n = 0;
    cb_head(&c, 5, 1);
    cb_text(&c, "x");
    for (int i = 0; i < 40; i++)
        cb_head(&c, 4, 1);
    cb_head(&c, 0, 1);
    expect_cb_err(&c, DVM_ERR_INVALID, "deeper");
    /* a stray break */
    cb_token(&c, NULL);
    cb_raw(&c, 0xff);
    expect_cb_err(&c, DVM_ERR_INVALID, NULL);
    /* duplicate "m" at the top */
    cb_token(&c, NULL);
    c.d[0] = 0xa4;
    cb_text(&c, "m");
    cb_text(&c, "https://other");
    expect_cb_err(&c, DVM_ERR_INVALID, "duplicate");
}

Test(token_v4, proof_count_limit_across_keysets)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t total = DVM_TOKEN_MAX_PROOFS + extra, half = total / 2;
        cb *c = malloc(sizeof *c);
        c->n = 0;
        cb_head(c, 5, 3);
        cb_text(c, "m");
        cb_text(c, "https://m");
        cb_text(c, "u");
        cb_text(c, "sat");
        cb_text(c, "t");
        cb_head(c, 4, 2);
        for (int k = 0; k < 2; k++) {
            size_t n = k ? total - half : half;
            cb_head(c, 5, 2);
            cb_text(c, "i");
            cb_hex(c, k ? "00aa" : "00bb");
            cb_text(c, "p");
            cb_head(c, 4, n);
            for (size_t i = 0; i < n; i++)
                cb_proof(c, 1, "s", C1);
        }
        dvm_token t;
        char why[256] = "";
        dvm_err e = dec_cb(c, &t, why);
        if (extra) {
            cr_assert_eq(e, DVM_ERR_TOO_LARGE, "%s", why);
            cr_assert_null(t.proofs);
        } else {
            cr_assert_eq(e, DVM_OK, "%s", why);
            cr_assert_eq(t.n_proofs, total);
            cr_assert_str_eq(t.proofs[0].id, "00bb");
            cr_assert_str_eq(t.proofs[total - 1].id, "00aa");
            dvm_token_free(&t);
        }
        free(c);
    }
}

/* ---------------------------------------------------------------------- */
/* encoder                                                                 */

static void make_token(dvm_token *t, size_t n)
{
    memset(t, 0, sizeof *t);
    strcpy(t->mint, "https://m.example");
    strcpy(t->unit, "sat");
    t->has_unit = true;
    t->n_proofs = n;
    t->proofs = calloc(n, sizeof *t->proofs);
    for (size_t i = 0; i < n; i++) {
        dvm_proof *p = &t->proofs[i];
        p->amount = (uint64_t)1 << i;
        strcpy(p->id, "00ad268c4d1f5826");
        p->secret_len = (size_t)snprintf(p->secret, sizeof p->secret, "secret-%zu", i);
        hex2bin(C1, p->C, 33);
    }
}

static void expect_encode_err(const dvm_token *t, int version, dvm_err want)
{
    dvm_buf b;
    dvm_buf_init(&b, 0);
    dvm_buf_append(&b, "keep", 4);
    cr_assert_eq(dvm_token_encode(t, version, &b), want);
    cr_assert_eq(b.len, 4, "output must be untouched on error");
    dvm_buf_free(&b);
}

Test(token_encode, rejects_what_would_not_decode)
{
    dvm_token t;
    make_token(&t, 3);
    expect_encode_err(&t, 2, DVM_ERR_UNSUPPORTED);
    expect_encode_err(&t, 5, DVM_ERR_UNSUPPORTED);
    for (int v = 3; v <= 4; v++) {
        dvm_token u = t;
        u.n_proofs = 0;
        expect_encode_err(&u, v, DVM_ERR_INVALID);
        u = t;
        u.unit[0] = '\0';
        expect_encode_err(&u, v, DVM_ERR_INVALID);
        u = t;
        u.mint[0] = '\0';
        expect_encode_err(&u, v, DVM_ERR_INVALID);
        t.proofs[1].amount = 0;
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        t.proofs[1].amount = 9007199254740992ULL;
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        t.proofs[1].amount = 2;
        strcpy(t.proofs[1].id, "00AD");
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        strcpy(t.proofs[1].id, "00a");
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        strcpy(t.proofs[1].id, "00ad");
        t.proofs[1].secret_len = 3; /* disagrees with the string */
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        t.proofs[1].secret_len = strlen(t.proofs[1].secret);
        t.proofs[1].C[0] = 0x04;
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        t.proofs[1].C[0] = 0x02;
        strcpy(t.memo, "bad \xff utf8");
        t.has_memo = true;
        expect_encode_err(&t, v, DVM_ERR_INVALID);
        t.has_memo = false; /* an absent memo is not looked at */
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, v, &b), DVM_OK);
        dvm_buf_free(&b);
        t.memo[0] = '\0';
    }
    t.proofs[0].amount = 9007199254740991ULL; /* total over 2^53-1 */
    expect_encode_err(&t, 4, DVM_ERR_INVALID);
    dvm_token_free(&t);
}

Test(token_encode, output_limit)
{
    dvm_token t;
    make_token(&t, 1);
    dvm_buf b;
    dvm_buf_init(&b, 20); /* the token cannot fit */
    cr_assert_eq(dvm_token_encode(&t, 4, &b), DVM_ERR_TOO_LARGE);
    cr_assert_eq(b.len, 0);
    dvm_buf_free(&b);
    dvm_token_free(&t);
}

/* Count the "t" entries of an encoded V4 token with libcbor. */
static size_t v4_keyset_entries(const dvm_buf *b)
{
    uint8_t *bin = malloc(b->len);
    size_t bn = 0;
    cr_assert_eq(sodium_base642bin(bin, b->len, (const char *)b->data + 6, b->len - 6, NULL, &bn,
                                   NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                 0);
    struct cbor_load_result lr;
    cbor_item_t *root = cbor_load(bin, bn, &lr);
    cr_assert_not_null(root);
    size_t n = 0;
    for (size_t i = 0; i < cbor_map_size(root); i++) {
        struct cbor_pair p = cbor_map_handle(root)[i];
        if (cbor_string_length(p.key) == 1 && cbor_string_handle(p.key)[0] == 't')
            n = cbor_array_size(p.value);
    }
    cbor_decref(&root);
    free(bin);
    return n;
}

Test(token_encode, v4_groups_runs_of_keyset_ids_keeping_order)
{
    dvm_token t;
    make_token(&t, 5);
    strcpy(t.proofs[2].id, "00ffd48b8f5ecf80");
    strcpy(t.proofs[3].id, "00ffd48b8f5ecf80");
    dvm_buf b;
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_token_encode(&t, 4, &b), DVM_OK);
    cr_assert_eq(v4_keyset_entries(&b), 3); /* aa, ff ff, aa */
    dvm_token u;
    char why[256];
    cr_assert_eq(dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why), DVM_OK);
    cr_assert(dvm_token_equal(&t, &u));
    dvm_token_free(&u);
    dvm_buf_free(&b);

    /* Grouped ids: one entry per keyset. */
    strcpy(t.proofs[4].id, "00ffd48b8f5ecf80");
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_token_encode(&t, 4, &b), DVM_OK);
    cr_assert_eq(v4_keyset_entries(&b), 2);
    dvm_buf_free(&b);
    dvm_token_free(&t);
}

Test(token_encode, v3_omits_default_unit_only_when_absent)
{
    dvm_token t;
    make_token(&t, 1);
    char why[256];
    for (int has = 0; has <= 1; has++) {
        t.has_unit = has;
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, 3, &b), DVM_OK);
        /* Look at the JSON itself. */
        uint8_t js[1024];
        size_t jn = 0;
        cr_assert_eq(sodium_base642bin(js, sizeof js - 1, (const char *)b.data + 6, b.len - 6, NULL,
                                       &jn, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
        js[jn] = '\0';
        cr_assert_eq(strstr((char *)js, "\"unit\":\"sat\"") != NULL, has, "%s", js);
        cr_assert_eq(strstr((char *)js, "\"token\":[{\"mint\":") == (char *)js + 1, true, "%s",
                     js);
        dvm_token u;
        cr_assert_eq(dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why), DVM_OK);
        cr_assert(dvm_token_equal(&t, &u));
        dvm_token_free(&u);
        dvm_buf_free(&b);
    }
    dvm_token_free(&t);
}

/* ---------------------------------------------------------------------- */
/* properties: seeded random tokens round-trip through V3, V4 and raw      */

static uint64_t rng_state;
static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

/* Random UTF-8 text of up to max bytes, with JSON-special characters and
 * multi-byte sequences; at least min bytes. */
static size_t rnd_text(char *dst, size_t min, size_t max)
{
    static const char *pieces[] = {"a", "Z", "0", "\"", "\\", "/", "\n", "\t", "\x01", "\x7f",
                                   " ", "é", "€", "😀", "{", "}", "=", "+"};
    size_t target = min + rnd_below(max - min + 1), n = 0;
    while (n < target) {
        const char *p = pieces[rnd_below(sizeof pieces / sizeof pieces[0])];
        size_t pl = strlen(p);
        if (n + pl > max)
            p = "x", pl = 1;
        memcpy(dst + n, p, pl);
        n += pl;
    }
    dst[n] = '\0';
    return n;
}

static void rnd_hex(char *dst, size_t bytes)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < 2 * bytes; i++)
        dst[i] = d[rnd_below(16)];
    dst[2 * bytes] = '\0';
}

static void random_token(dvm_token *t)
{
    memset(t, 0, sizeof *t);
    rnd_text(t->mint, 1, rnd_below(4) ? 40 : DVM_MINT_URL_MAX);
    static const char *units[] = {"sat", "msat", "usd", "eur"};
    strcpy(t->unit, units[rnd_below(4)]);
    t->has_unit = strcmp(t->unit, "sat") != 0 || rnd_below(2);
    t->has_memo = rnd_below(2);
    if (t->has_memo)
        rnd_text(t->memo, 0, rnd_below(8) ? 30 : DVM_MEMO_MAX);
    t->n_proofs = 1 + rnd_below(rnd_below(10) ? 12 : DVM_TOKEN_MAX_PROOFS);
    t->proofs = calloc(t->n_proofs, sizeof *t->proofs);
    char ids[3][DVM_KEYSET_ID_MAX + 1];
    for (int k = 0; k < 3; k++)
        rnd_hex(ids[k], k == 0 ? 8 : k == 1 ? 33 : 1 + rnd_below(33));
    size_t budget = 9007199254740991ULL;
    for (size_t i = 0; i < t->n_proofs; i++) {
        dvm_proof *p = &t->proofs[i];
        uint64_t a = rnd_below(3) ? (uint64_t)1 << rnd_below(20) : 1 + rnd_below(1u << 30);
        if (rnd_below(50) == 0)
            a = budget / (t->n_proofs - i); /* large but the total stays within 2^53-1 */
        if (a == 0)
            a = 1;
        budget -= a;
        p->amount = a;
        strcpy(p->id, ids[i == 0 ? 0 : rnd_below(4) ? 0 : rnd_below(3)]);
        /* long secrets only in small tokens, so the token fits its limit */
        p->secret_len =
            rnd_text(p->secret, 1, t->n_proofs > 12 || rnd_below(8) ? 64 : DVM_SECRET_MAX);
        for (size_t j = 0; j < 33; j++)
            p->C[j] = (uint8_t)rnd();
        p->C[0] = 2 + (uint8_t)rnd_below(2);
        p->has_dleq = rnd_below(2);
        if (p->has_dleq) {
            for (size_t j = 0; j < 32; j++) {
                p->dleq.e[j] = (uint8_t)rnd();
                p->dleq.s[j] = (uint8_t)rnd();
                p->dleq.r[j] = (uint8_t)rnd();
            }
            p->dleq.has_r = rnd_below(2);
        }
    }
}

Test(token_property, decode_of_encode_is_identity_v3_v4_raw)
{
    rng_state = 0x5eed0c0ffee5ULL;
    char why[256];
    for (int iter = 0; iter < 300; iter++) {
        dvm_token t;
        random_token(&t);
        for (int v = 3; v <= 4; v++) {
            dvm_buf b;
            dvm_buf_init(&b, 0);
            cr_assert_eq(dvm_token_encode(&t, v, &b), DVM_OK, "iter %d v%d", iter, v);
            cr_assert(memcmp(b.data, v == 3 ? "cashuA" : "cashuB", 6) == 0);
            dvm_token u;
            dvm_err e = dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why);
            cr_assert_eq(e, DVM_OK, "iter %d v%d: %s", iter, v, why);
            cr_assert_eq(u.version, v);
            cr_assert(dvm_token_equal(&t, &u), "iter %d v%d: round trip differs", iter, v);
            /* Encoding is deterministic: the decoded token encodes the same. */
            dvm_buf b2;
            dvm_buf_init(&b2, 0);
            cr_assert_eq(dvm_token_encode(&u, v, &b2), DVM_OK);
            cr_assert_eq(b2.len, b.len);
            cr_assert(memcmp(b2.data, b.data, b.len) == 0);
            dvm_buf_free(&b2);
            dvm_token_free(&u);
            dvm_buf_free(&b);
        }
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode_raw(&t, &b), DVM_OK);
        dvm_token u;
        cr_assert_eq(dvm_token_decode_raw(b.data, b.len, &u, why, sizeof why), DVM_OK, "%s", why);
        cr_assert(dvm_token_equal(&t, &u));
        dvm_token_free(&u);
        dvm_buf_free(&b);
        dvm_token_free(&t);
    }
}

Test(token_property, truncations_of_valid_tokens_never_decode_to_garbage)
{
    rng_state = 42;
    char why[256];
    for (int iter = 0; iter < 40; iter++) {
        dvm_token t;
        random_token(&t);
        int v = 3 + (iter & 1);
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, v, &b), DVM_OK);
        /* Every strict prefix of the text fails cleanly: the JSON or CBOR
         * is cut, or the base64 is. */
        size_t step = b.len / 60 + 1;
        for (size_t n = 0; n < b.len; n += step) {
            dvm_token u;
            dvm_err e = dvm_token_decode((const char *)b.data, n, &u, why, sizeof why);
            cr_assert_neq(e, DVM_OK, "iter %d: prefix %zu of %zu decoded", iter, n, b.len);
            cr_assert_null(u.proofs);
            cr_assert_gt(strlen(why), 0);
        }
        dvm_buf_free(&b);
        dvm_token_free(&t);
    }
}

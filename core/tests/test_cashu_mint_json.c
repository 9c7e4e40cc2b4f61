/* The mint's HTTP bodies (cashu/mint_json.h): requests parse into the
 * structs the mint logic takes, limits and malformed bodies give clear
 * reasons, responses have the NUT shapes. */
#include "cashu_test_util.h"

#include "cashu/mint_json.h"

static test_env env;

static void setup(void)
{
    test_env_init(&env, NULL, 21);
}

static void teardown(void)
{
    test_env_free(&env);
}

TestSuite(mint_json, .init = setup, .fini = teardown);

static char *dump(json_t *j)
{
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

Test(mint_json, swap_request_round_trip_through_the_mint)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 10, in);
    const dvm_keyset *ks = test_active(&env);
    dvm_wallet_swap sw;
    char reason[200];
    cr_assert_eq(dvm_wallet_swap_prepare(env.ctx, &env.rng, ks, 1, ks, in, n, 1, 10, &sw, reason,
                                         sizeof reason),
                 DVM_OK);
    char *body = dump(json_pack("{s:o, s:o}", "inputs", dvm_cashu_proofs_to_json(in, n),
                                "outputs",
                                dvm_cashu_blinded_messages_to_json(sw.messages, sw.n_outputs)));
    dvm_swap_request r;
    cr_assert_eq(dvm_mint_parse_swap(env.ctx, body, strlen(body), 0, 0, &r, reason,
                                     sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(r.n_inputs, n);
    cr_assert_eq(r.n_outputs, 10);
    dvm_blind_signature sigs[10];
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_swap(env.mint, r.inputs, r.n_inputs, r.outputs, r.n_outputs, sigs,
                               &err),
                 DVM_OK, "%s", err.detail);
    /* The response parses back on the wallet side and unblinds. */
    char *resp = dump(dvm_mint_signatures_json(sigs, 10));
    json_t *j = json_loads(resp, 0, NULL);
    dvm_blind_signature *back;
    size_t nb;
    cr_assert_eq(dvm_cashu_blind_signatures_from_json(env.ctx, json_object_get(j, "signatures"),
                                                      100, "signatures", &back, &nb, reason,
                                                      sizeof reason),
                 DVM_OK, "%s", reason);
    dvm_proof out[10];
    cr_assert_eq(dvm_wallet_swap_finish(env.ctx, ks, &sw, back, nb, true, out, reason,
                                        sizeof reason),
                 DVM_OK, "%s", reason);
    /* The same body again: 11001 as HTTP would answer it. */
    cr_assert_eq(dvm_mint_swap(env.mint, r.inputs, r.n_inputs, r.outputs, r.n_outputs, sigs,
                               &err),
                 DVM_ERR_SPENT);
    char *e = dump(dvm_mint_error_json(&err));
    cr_assert(strstr(e, "\"code\":11001"), "%s", e);
    cr_assert(strstr(e, "\"detail\":"), "%s", e);
    free(e);
    free(back);
    json_decref(j);
    free(resp);
    free(body);
    dvm_swap_request_free(&r);
    dvm_wallet_swap_free(&sw);
}

Test(mint_json, bad_bodies_have_reasons)
{
    struct {
        const char *body;
        dvm_err want;
        const char *in_reason;
    } cases[] = {
        {"{\"inputs\":[], \"outputs\": [", DVM_ERR_INVALID, "malformed JSON"},
        {"[]", DVM_ERR_INVALID, "not a JSON object"},
        {"{\"outputs\":[]}", DVM_ERR_INVALID, "inputs: missing"},
        {"{\"inputs\":{}, \"outputs\":[]}", DVM_ERR_INVALID, "inputs: not an array"},
        {"{\"inputs\":[{\"amount\":1}], \"outputs\":[]}", DVM_ERR_INVALID, "inputs[0].id"},
        {"{\"inputs\":[], \"inputs\":[], \"outputs\":[]}", DVM_ERR_INVALID, "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dvm_swap_request r;
        char reason[200] = "";
        cr_assert_eq(dvm_mint_parse_swap(env.ctx, cases[i].body, strlen(cases[i].body), 0, 0, &r,
                                         reason, sizeof reason),
                     cases[i].want, "case %zu: %s", i, reason);
        cr_assert(strstr(reason, cases[i].in_reason), "case %zu: reason '%s'", i, reason);
        cr_assert_null(r.inputs);
    }
    /* Over the count limit: DVM_ERR_LIMIT, mapped to 11015 for outputs. */
    const char *many = "{\"inputs\":[], \"outputs\":[1,2,3]}";
    dvm_swap_request r;
    char reason[200];
    dvm_err e = dvm_mint_parse_swap(env.ctx, many, strlen(many), 5, 2, &r, reason, sizeof reason);
    cr_assert_eq(e, DVM_ERR_LIMIT);
    cr_assert_eq(dvm_mint_parse_error_code(e, true), DVM_NUT_MAX_OUTPUTS);
    cr_assert_eq(dvm_mint_parse_error_code(DVM_ERR_INVALID, true), DVM_NUT_GENERIC);
    /* Over the body limit. */
    cr_assert_eq(dvm_mint_parse_swap(env.ctx, many, DVM_MINT_MAX_BODY + 1, 0, 0, &r, reason,
                                     sizeof reason),
                 DVM_ERR_TOO_LARGE);
}

Test(mint_json, quotes_and_checkstate)
{
    dvm_quote_request qr;
    char reason[200];
    const char *b = "{\"amount\": 21, \"unit\": \"sat\"}";
    cr_assert_eq(dvm_mint_parse_mint_quote(b, strlen(b), &qr, reason, sizeof reason), DVM_OK);
    cr_assert_eq(qr.amount, 21);
    cr_assert_str_eq(qr.unit, "sat");
    b = "{\"amount\": 1.5, \"unit\": \"sat\"}";
    cr_assert_eq(dvm_mint_parse_mint_quote(b, strlen(b), &qr, reason, sizeof reason),
                 DVM_ERR_INVALID);
    dvm_mint_quote q;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 21, "sat", env.now_ms, &q, &err), DVM_OK);
    char *s = dump(dvm_mint_quote_json(&q));
    cr_assert(strstr(s, "\"state\":\"PAID\""), "%s", s);
    cr_assert(strstr(s, "\"amount\":21"), "%s", s);
    free(s);

    char body[DVM_BOLT11_MAX + 100];
    snprintf(body, sizeof body, "{\"request\": \"%s\", \"unit\": \"sat\"}", q.request);
    cr_assert_eq(dvm_mint_parse_melt_quote(body, strlen(body), &qr, reason, sizeof reason),
                 DVM_OK);
    dvm_melt_quote mq;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, qr.request, qr.unit, env.now_ms, &mq, &err),
                 DVM_OK);
    s = dump(dvm_melt_quote_json(&mq));
    cr_assert(strstr(s, "\"payment_preimage\":null"), "%s", s);
    cr_assert(strstr(s, "\"state\":\"UNPAID\""), "%s", s);
    free(s);

    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 2, in);
    uint8_t Y[33];
    char yh[67];
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[0], Y), DVM_OK);
    dvm_cashu_hex_encode(Y, 33, yh);
    (void)n;
    snprintf(body, sizeof body, "{\"Ys\": [\"%s\"]}", yh);
    dvm_checkstate_request cr;
    cr_assert_eq(dvm_mint_parse_checkstate(env.ctx, body, strlen(body), 0, &cr, reason,
                                           sizeof reason),
                 DVM_OK, "%s", reason);
    dvm_proof_state st;
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])cr.Ys, cr.n, &st, &err),
                 DVM_OK);
    s = dump(dvm_mint_states_json((const uint8_t(*)[33])cr.Ys, &st, 1));
    cr_assert(strstr(s, "\"state\":\"UNSPENT\""), "%s", s);
    cr_assert(strstr(s, yh), "%s", s);
    free(s);
    dvm_checkstate_request_free(&cr);
}

Test(mint_json, keys_keysets_info)
{
    const dvm_keyset *ks = test_active(&env);
    json_t *k = dvm_mint_keys_json(env.mint, NULL);
    json_t *first = json_array_get(json_object_get(k, "keysets"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "id")), ks->id);
    cr_assert_eq(json_object_size(json_object_get(first, "keys")), 64);
    /* The wallet side parses it back and checks the id. */
    dvm_keyset back;
    char reason[200];
    cr_assert_eq(dvm_cashu_keyset_from_json(env.ctx, first, &back, reason, sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(memcmp(back.keys, ks->keys, sizeof ks->keys), 0);
    json_decref(k);
    cr_assert_null(dvm_mint_keys_json(env.mint, "00ffffffffffffff"));
    char *s = dump(dvm_mint_keysets_json(env.mint));
    cr_assert(strstr(s, "\"active\":true"), "%s", s);
    cr_assert(strstr(s, "\"input_fee_ppk\":0"), "%s", s);
    free(s);
    s = dump(dvm_mint_info_json(env.mint, "test", "0.1.0", NULL));
    cr_assert(strstr(s, "\"version\":\"dvmstream/0.1.0\""), "%s", s);
    cr_assert(strstr(s, "\"12\":{\"supported\":true}"), "%s", s);
    free(s);
}

Test(mint_json, client_side_parsers_read_what_the_server_writes)
{
    dvm_mint_quote q, q2;
    dvm_mint_error err, err2;
    char reason[200];
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 21, "sat", env.now_ms, &q, &err), DVM_OK);
    json_t *j = dvm_mint_quote_json(&q);
    cr_assert_eq(dvm_mint_quote_from_json(j, &q2, reason, sizeof reason), DVM_OK, "%s", reason);
    cr_assert_eq(memcmp(&q, &q2, sizeof q), 0);
    json_decref(j);
    /* An old-style {"paid": false} quote. */
    j = json_pack("{s:s, s:s, s:b}", "quote", "abc", "request", "lnbc1", "paid", 0);
    cr_assert_eq(dvm_mint_quote_from_json(j, &q2, reason, sizeof reason), DVM_OK);
    cr_assert_eq(q2.state, DVM_MINT_QUOTE_UNPAID);
    json_decref(j);

    /* Melt with change, through JSON both ways. */
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 32, in);
    dvm_melt_quote mq, paid, back;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "lnbc100n1pxyz", "sat", env.now_ms, &mq,
                                            &err),
                 DVM_OK);
    uint64_t ones[5] = {1, 1, 1, 1, 1};
    dvm_wallet_output blank[5];
    dvm_blinded_message msgs[5];
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, test_active(&env), ones, 5, blank),
                 DVM_OK);
    for (int i = 0; i < 5; i++)
        msgs[i] = blank[i].msg;
    dvm_blind_signature change[5], *ch;
    size_t nc, nch;
    cr_assert_eq(dvm_mint_melt_with_change(env.mint, mq.quote, in, n, msgs, 5, env.now_ms, &paid,
                                           change, &nc, &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(nc, 3); /* 32 - 10 = 22 = 16 + 4 + 2 */
    j = dvm_melt_response_json(&paid, change, nc);
    cr_assert_eq(dvm_melt_quote_from_json(env.ctx, j, &back, 10, &ch, &nch, reason,
                                          sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(back.state, DVM_MELT_QUOTE_PAID);
    cr_assert_str_eq(back.payment_preimage, paid.payment_preimage);
    cr_assert_eq(nch, 3);
    cr_assert_eq(ch[0].amount, 16);
    cr_assert_eq(memcmp(ch, change, 3 * sizeof *ch), 0);
    free(ch);
    json_decref(j);

    /* Checkstate answers, matched by Y. */
    uint8_t Ys[2][33];
    dvm_proof_state st[2], st2[2];
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[0], Ys[0]), DVM_OK);
    cr_assert_eq(dvm_cashu_hash_to_curve(env.ctx, (const uint8_t *)"fresh", 5, Ys[1]), DVM_OK);
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])Ys, 2, st, &err), DVM_OK);
    cr_assert_eq(st[0], DVM_PROOF_SPENT);
    j = dvm_mint_states_json((const uint8_t(*)[33])Ys, st, 2);
    uint8_t rev[2][33];
    memcpy(rev[0], Ys[1], 33);
    memcpy(rev[1], Ys[0], 33);
    cr_assert_eq(dvm_mint_states_from_json(j, (const uint8_t(*)[33])rev, 2, st2, reason,
                                           sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(st2[0], DVM_PROOF_UNSPENT);
    cr_assert_eq(st2[1], DVM_PROOF_SPENT);
    json_decref(j);
    j = json_pack("{s:[]}", "states");
    cr_assert_eq(dvm_mint_states_from_json(j, (const uint8_t(*)[33])rev, 1, st2, reason,
                                           sizeof reason),
                 DVM_ERR_PROTO);
    json_decref(j);

    /* Error objects. */
    err.code = DVM_NUT_PROOFS_SPENT;
    strcpy(err.detail, "inputs[0]: already spent");
    j = dvm_mint_error_json(&err);
    cr_assert_eq(dvm_mint_error_from_json(j, &err2), DVM_OK);
    cr_assert_eq(err2.code, 11001);
    cr_assert_str_eq(err2.detail, err.detail);
    json_decref(j);
    j = json_pack("{s:i}", "amount", 1);
    cr_assert_eq(dvm_mint_error_from_json(j, &err2), DVM_ERR_INVALID);
    json_decref(j);
}

/* dvm mint over HTTP: every endpoint's happy path and its errors, against a
 * real `dvm mint` process on 127.0.0.1. */
#include "mint_client.h"
#include "port_hold.h"

static struct mint_proc M;
static struct mc C;

static void setup_with(const char *const *extra)
{
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), extra);
    mc_init(&C, M.url);
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    if (M.pid > 0) {
        int st = mp_stop(&M, SIGTERM);
        cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "dvm mint should exit 0 on SIGTERM");
    }
    mc_free(&C);
    mp_fini();
}

TestSuite(mint_http, .init = setup, .fini = teardown, .timeout = 120);

Test(mint_http, info_has_nut06_fields)
{
    json_t *r = NULL;
    cr_assert_eq(mp_http(M.url, "/v1/info", NULL, 0, &r), 200);
    cr_assert(json_is_string(json_object_get(r, "name")));
    cr_assert(json_is_string(json_object_get(r, "version")));
    cr_assert_eq(json_string_length(json_object_get(r, "pubkey")), 66);
    cr_assert(json_is_array(json_object_get(r, "contact")));
    json_t *nuts = json_object_get(r, "nuts");
    json_t *m4 = json_array_get(json_object_get(json_object_get(nuts, "4"), "methods"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(m4, "method")), "bolt11");
    cr_assert_str_eq(json_string_value(json_object_get(m4, "unit")), "sat");
    cr_assert(json_is_false(json_object_get(json_object_get(nuts, "5"), "disabled")));
    cr_assert(json_is_true(json_object_get(json_object_get(nuts, "7"), "supported")));
    cr_assert(json_is_true(json_object_get(json_object_get(nuts, "12"), "supported")));
    json_decref(r);
}

Test(mint_http, keys_and_keysets)
{
    json_t *r = NULL;
    cr_assert_eq(mp_http(M.url, "/v1/keysets", NULL, 0, &r), 200);
    json_t *k0 = json_array_get(json_object_get(r, "keysets"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(k0, "id")), C.ks.id);
    cr_assert_str_eq(json_string_value(json_object_get(k0, "unit")), "sat");
    cr_assert(json_is_true(json_object_get(k0, "active")));
    cr_assert_eq(json_integer_value(json_object_get(k0, "input_fee_ppk")), 0);
    json_decref(r);
    /* The id matches the keys (checked by mc_init's parser); 64 keys. */
    cr_assert_eq(dvm_keyset_check_id(&C.ks), DVM_OK);
    cr_assert_eq(C.ks.id[0], '0');
    cr_assert_eq(C.ks.id[1], '0');
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", C.ks.id);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_eq(json_object_size(json_object_get(json_array_get(json_object_get(r, "keysets"), 0),
                                                  "keys")),
                 64);
    json_decref(r);
    cr_assert_eq(mp_http(M.url, "/v1/keys/00ffffffffffffff", NULL, 0, &r), 400);
    cr_assert_eq(mp_code(r), 12001);
    json_decref(r);
}

Test(mint_http, unknown_path_and_method)
{
    json_t *r = NULL;
    cr_assert_eq(mp_http(M.url, "/v1/nope", NULL, 0, &r), 404);
    json_decref(r);
    cr_assert_eq(mp_http(M.url, "/v1/keys", "{}", 2, &r), 405);
    json_decref(r);
    cr_assert_eq(mp_http(M.url, "/v1/swap", NULL, 0, &r), 405);
    json_decref(r);
}

Test(mint_http, mint_quote_lifecycle)
{
    json_t *req = json_pack("{s:I, s:s}", "amount", (json_int_t)13, "unit", "sat");
    json_t *q = NULL, *r = NULL;
    cr_assert_eq(mp_post_json(M.url, "/v1/mint/quote/bolt11", req, &q), 200);
    json_decref(req);
    const char *quote = json_string_value(json_object_get(q, "quote"));
    cr_assert_not_null(quote);
    cr_assert_eq(json_integer_value(json_object_get(q, "amount")), 13);
    cr_assert_str_eq(json_string_value(json_object_get(q, "unit")), "sat");
    cr_assert_str_eq(json_string_value(json_object_get(q, "state")), "PAID");
    cr_assert(strncmp(json_string_value(json_object_get(q, "request")), "lnbc", 4) == 0);
    char path[200];
    snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s", quote);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "PAID");
    json_decref(r);

    /* Outputs that do not add up to the quote: 11005. */
    uint64_t bad[] = {8, 4};
    dvm_wallet_output outs[3];
    mc_outputs(&C, bad, 2, outs);
    req = json_pack("{s:s, s:o}", "quote", quote, "outputs", mc_outputs_json(outs, 2));
    cr_assert_eq(mp_post_json(M.url, "/v1/mint/bolt11", req, &r), 400);
    cr_assert_eq(mp_code(r), 11005);
    json_decref(req);
    json_decref(r);

    uint64_t amounts[] = {8, 4, 1};
    mc_outputs(&C, amounts, 3, outs);
    req = json_pack("{s:s, s:o}", "quote", quote, "outputs", mc_outputs_json(outs, 3));
    cr_assert_eq(mp_post_json(M.url, "/v1/mint/bolt11", req, &r), 200);
    dvm_proof proofs[3];
    mc_unblind(&C, r, outs, 3, proofs);
    json_decref(r);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "ISSUED");
    json_decref(r);
    /* Minting the same quote again: 20002. */
    mc_outputs(&C, amounts, 3, outs);
    json_decref(req);
    req = json_pack("{s:s, s:o}", "quote", quote, "outputs", mc_outputs_json(outs, 3));
    cr_assert_eq(mp_post_json(M.url, "/v1/mint/bolt11", req, &r), 400);
    cr_assert_eq(mp_code(r), 20002);
    json_decref(r);
    json_decref(req);
    json_decref(q);

    /* Unknown quote; bad unit; bad amount type. */
    cr_assert_eq(mp_http(M.url, "/v1/mint/quote/bolt11/doesnotexist", NULL, 0, &r), 400);
    cr_assert_eq(mp_code(r), 20000);
    json_decref(r);
    const char *usd = "{\"amount\":5,\"unit\":\"usd\"}";
    cr_assert_eq(mp_http(M.url, "/v1/mint/quote/bolt11", usd, strlen(usd), &r), 400);
    cr_assert_eq(mp_code(r), 11013);
    json_decref(r);
    const char *str = "{\"amount\":\"5\",\"unit\":\"sat\"}";
    cr_assert_eq(mp_http(M.url, "/v1/mint/quote/bolt11", str, strlen(str), &r), 400);
    cr_assert_eq(mp_code(r), 10000);
    json_decref(r);
}

Test(mint_http, swap_happy_path_with_dleq_and_double_spend)
{
    uint64_t a[] = {16, 4};
    dvm_proof ins[2];
    mc_mint(&C, a, 2, ins);
    for (int i = 0; i < 2; i++) {
        cr_assert(ins[i].has_dleq && ins[i].dleq.has_r);
        cr_assert_eq(dvm_cashu_dleq_verify_proof(C.ctx, dvm_keyset_key(&C.ks, ins[i].amount), &ins[i]),
                     DVM_OK, "offline DLEQ of proof %d", i);
    }
    uint64_t b[] = {8, 8, 2, 2};
    dvm_wallet_output outs[4];
    mc_outputs(&C, b, 4, outs);
    json_t *req = mc_swap_req(ins, 2, outs, 4), *r = NULL;
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    dvm_proof news[4];
    mc_unblind(&C, r, outs, 4, news);
    json_decref(r);
    json_decref(req);

    /* Same inputs again, fresh outputs: 11001. */
    mc_outputs(&C, b, 4, outs);
    req = mc_swap_req(ins, 2, outs, 4);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11001);
    json_decref(r);
    json_decref(req);

    /* checkstate: the old proofs SPENT, the new UNSPENT. */
    json_t *ys = json_array();
    uint8_t Y[DVM_POINT_BYTES];
    char hex[67];
    dvm_cashu_proof_Y(C.ctx, &ins[0], Y);
    dvm_cashu_hex_encode(Y, DVM_POINT_BYTES, hex);
    json_array_append_new(ys, json_string(hex));
    dvm_cashu_proof_Y(C.ctx, &news[0], Y);
    dvm_cashu_hex_encode(Y, DVM_POINT_BYTES, hex);
    json_array_append_new(ys, json_string(hex));
    req = json_pack("{s:o}", "Ys", ys);
    cr_assert_eq(mp_post_json(M.url, "/v1/checkstate", req, &r), 200);
    json_t *st = json_object_get(r, "states");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(st, 0), "state")), "SPENT");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(st, 1), "state")), "UNSPENT");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(st, 1), "Y")), hex);
    json_decref(r);
    json_decref(req);
}

Test(mint_http, swap_errors)
{
    uint64_t a[] = {8, 2};
    dvm_proof ins[2];
    mc_mint(&C, a, 2, ins);
    dvm_wallet_output outs[3];
    json_t *req, *r = NULL;

    /* Unbalanced: 10 in, 9 out -> 11005. */
    uint64_t b[] = {8, 1};
    mc_outputs(&C, b, 2, outs);
    req = mc_swap_req(ins, 2, outs, 2);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11005);
    json_decref(r);
    json_decref(req);

    /* Duplicate outputs -> 11008. */
    uint64_t c2[] = {8, 2};
    mc_outputs(&C, c2, 2, outs);
    outs[1] = outs[0];
    outs[1].msg.amount = 2;
    req = mc_swap_req(ins, 2, outs, 2);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11008);
    json_decref(r);
    json_decref(req);

    /* Duplicate inputs -> 11007. */
    dvm_proof dup[2] = {ins[0], ins[0]};
    uint64_t c3[] = {16};
    mc_outputs(&C, c3, 1, outs);
    req = mc_swap_req(dup, 2, outs, 1);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11007);
    json_decref(r);
    json_decref(req);

    /* Tampered C -> 10001. */
    dvm_proof bad = ins[1];
    bad.C[5] ^= 1;
    uint64_t c4[] = {2};
    mc_outputs(&C, c4, 1, outs);
    req = mc_swap_req(&bad, 1, outs, 1);
    long st = mp_post_json(M.url, "/v1/swap", req, &r);
    cr_assert_eq(st, 400);
    cr_assert(mp_code(r) == 10001 || mp_code(r) == 10000, "code %ld", mp_code(r));
    json_decref(r);
    json_decref(req);

    /* Unknown keyset in an output -> 12001. */
    mc_outputs(&C, c4, 1, outs);
    snprintf(outs[0].msg.id, sizeof outs[0].msg.id, "00ffffffffffffff");
    req = mc_swap_req(&ins[1], 1, outs, 1);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 12001);
    json_decref(r);
    json_decref(req);

    /* Malformed JSON, wrong types, missing fields -> 400 with a code. */
    const char *bodies[] = {
        "{not json",
        "[]",
        "{\"inputs\": 5, \"outputs\": []}",
        "{\"inputs\": []}",
        "{\"inputs\": [{\"amount\": \"8\", \"id\": \"00\", \"secret\": \"x\", \"C\": \"02\"}], \"outputs\": []}",
        "{\"inputs\": [], \"outputs\": [{\"amount\": 1, \"id\": 7, \"B_\": \"zz\"}]}",
        "",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        r = NULL;
        cr_assert_eq(mp_http(M.url, "/v1/swap", bodies[i], strlen(bodies[i]), &r), 400,
                     "body %zu", i);
        cr_assert(json_is_string(json_object_get(r, "detail")), "body %zu has a detail", i);
        cr_assert(mp_code(r) > 0, "body %zu has a code", i);
        json_decref(r);
    }
    /* The good proofs are still spendable after all those failures. */
    uint64_t ok[] = {8, 2};
    mc_outputs(&C, ok, 2, outs);
    req = mc_swap_req(ins, 2, outs, 2);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    json_decref(r);
    json_decref(req);
}

Test(mint_http, outputs_already_signed_11003)
{
    uint64_t a[] = {4};
    dvm_proof ins[1];
    mc_mint(&C, a, 1, ins);
    uint64_t b[] = {4};
    dvm_wallet_output outs[1];
    mc_outputs(&C, b, 1, outs);
    json_t *r = NULL;
    json_t *req = mc_swap_req(ins, 1, outs, 1);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    dvm_proof p2[1];
    mc_unblind(&C, r, outs, 1, p2);
    json_decref(r);
    json_decref(req);
    /* Spend the new proof into the SAME blinded message again: 11003. */
    req = mc_swap_req(p2, 1, outs, 1);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11003);
    json_decref(r);
    json_decref(req);

    /* NUT-09 restore returns the stored signature for that output. */
    req = json_pack("{s:o}", "outputs", mc_outputs_json(outs, 1));
    cr_assert_eq(mp_post_json(M.url, "/v1/restore", req, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "signatures")), 1);
    dvm_proof p3[1];
    mc_unblind(&C, r, outs, 1, p3);
    cr_assert_eq(memcmp(p3[0].C, p2[0].C, DVM_POINT_BYTES), 0);
    json_decref(r);
    json_decref(req);
}

Test(mint_http, melt_fake_backend)
{
    uint64_t a[] = {16, 4};
    dvm_proof ins[2];
    mc_mint(&C, a, 2, ins);
    json_t *r = NULL, *q = NULL;
    /* 200 nBTC... 20 sats: lnbc200n */
    json_t *req = json_pack("{s:s, s:s}", "request", "lnbc200n1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq",
                            "unit", "sat");
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/quote/bolt11", req, &q), 200);
    json_decref(req);
    cr_assert_eq(json_integer_value(json_object_get(q, "amount")), 20);
    cr_assert_str_eq(json_string_value(json_object_get(q, "state")), "UNPAID");
    const char *quote = json_string_value(json_object_get(q, "quote"));
    req = json_pack("{s:s, s:o}", "quote", quote, "inputs", dvm_cashu_proofs_to_json(ins, 2));
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/bolt11", req, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "PAID");
    cr_assert(json_is_string(json_object_get(r, "payment_preimage")));
    json_decref(r);
    char path[200];
    snprintf(path, sizeof path, "/v1/melt/quote/bolt11/%s", quote);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "PAID");
    json_decref(r);
    /* Paying again: the quote is PAID (20006) or the inputs spent. */
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/bolt11", req, &r), 400);
    cr_assert(mp_code(r) == 20006 || mp_code(r) == 11001, "code %ld", mp_code(r));
    json_decref(r);
    json_decref(req);
    json_decref(q);
    /* Amountless invoice: 11011. */
    req = json_pack("{s:s, s:s}", "request", "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq", "unit", "sat");
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/quote/bolt11", req, &r), 400);
    cr_assert_eq(mp_code(r), 11011);
    json_decref(r);
    json_decref(req);
}

Test(mint_http, checkstate_errors)
{
    json_t *r = NULL;
    const char *b1 = "{\"Ys\": [\"0200\"]}";
    cr_assert_eq(mp_http(M.url, "/v1/checkstate", b1, strlen(b1), &r), 400);
    json_decref(r);
    const char *b2 = "{\"Ys\": 3}";
    cr_assert_eq(mp_http(M.url, "/v1/checkstate", b2, strlen(b2), &r), 400);
    json_decref(r);
    const char *b3 = "{\"Ys\": []}";
    cr_assert_eq(mp_http(M.url, "/v1/checkstate", b3, strlen(b3), &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "states")), 0);
    json_decref(r);
}

static void setup_limits(void)
{
    static const char *const extra[] = {"--max-inputs", "3", "--max-outputs", "3", "--max-body",
                                        "65536", NULL};
    setup_with(extra);
}

TestSuite(mint_limits, .init = setup_limits, .fini = teardown, .timeout = 120);

Test(mint_limits, inputs_outputs_body)
{
    uint64_t a[] = {1, 1, 1};
    dvm_proof ins[4];
    mc_mint(&C, a, 3, ins);
    mc_mint(&C, a, 1, ins + 3);
    dvm_wallet_output outs[4];
    uint64_t b4[] = {1, 1, 1, 1};
    mc_outputs(&C, b4, 4, outs);
    json_t *r = NULL, *req = mc_swap_req(ins, 4, outs, 1);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11014);
    json_decref(r);
    json_decref(req);
    req = mc_swap_req(ins, 1, outs, 4);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11015);
    json_decref(r);
    json_decref(req);
    /* A body over --max-body: 400 (or the connection closed) - never 200. */
    size_t big = 200000;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[0] = '{';
    body[big - 1] = '}';
    body[big] = '\0';
    long st = mp_http(M.url, "/v1/swap", body, big, &r);
    cr_assert(st == 400 || st == 413 || st == 0, "status %ld", st);
    if (r)
        cr_assert(strstr(json_string_value(json_object_get(r, "detail")), "too large"));
    json_decref(r);
    free(body);
    /* The mint still serves. */
    cr_assert_eq(mp_http(M.url, "/v1/info", NULL, 0, &r), 200);
    json_decref(r);
}

/* mp_start_port's rebind (mint_proc.h): a mint restarted on its port while
 * another socket briefly holds that port (as an outgoing connection that
 * got it as its ephemeral port would) starts once the holder lets go,
 * instead of failing the test with EADDRINUSE. */
Test(mint_http, restart_on_a_port_held_for_a_moment_retries_the_bind)
{
    int port = M.port;
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    int st = mp_stop(&M, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    port_hold h;
    port_hold_start(&h, port, 400);
    mp_start_port(&M, db, port, NULL);
    port_hold_join(&h);
    cr_assert_eq(M.port, port);
    json_t *r = NULL;
    cr_assert_eq(mp_http(M.url, "/v1/info", NULL, 0, &r), 200, "the restarted mint answers");
    json_decref(r);
}

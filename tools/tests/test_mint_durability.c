/* dvm mint under races and crashes: concurrent double spends (threads, and
 * two mint processes on one database) have exactly one winner; kill -9 and
 * restart loses nothing. */
#include <pthread.h>

#include "mint_client.h"

static struct mint_proc M, M2;
static struct mc C;

static void setup(void)
{
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), NULL);
    mc_init(&C, M.url);
}

static void teardown(void)
{
    mp_stop(&M, SIGTERM);
    mp_stop(&M2, SIGTERM);
    mc_free(&C);
    mp_fini();
}

TestSuite(mint_durability, .init = setup, .fini = teardown, .timeout = 180);

#define RACERS 8

struct racer {
    pthread_barrier_t *bar;
    const char *url;
    char *body;
    long status;
    long code;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->bar);
    json_t *reply = NULL;
    r->status = mp_http(r->url, "/v1/swap", r->body, strlen(r->body), &reply);
    r->code = mp_code(reply);
    json_decref(reply);
    return NULL;
}

/* RACERS threads post swaps of the same proof (each with its own outputs)
 * at once, spread over the given mint URLs; returns the number of 200s
 * and checks every loser got 11001 (or 11002 while the winner was
 * pending). */
static int race_once(const char *const *urls, size_t n_urls)
{
    uint64_t a[] = {8};
    dvm_proof in[1];
    mc_mint(&C, a, 1, in);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, RACERS);
    struct racer rs[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        dvm_wallet_output out[1];
        mc_outputs(&C, a, 1, out);
        json_t *req = mc_swap_req(in, 1, out, 1);
        rs[i] = (struct racer){&bar, urls[(size_t)i % n_urls], json_dumps(req, JSON_COMPACT), 0, 0};
        json_decref(req);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_create(&th[i], NULL, race, &rs[i]);
    int wins = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        if (rs[i].status == 200)
            wins++;
        else
            cr_assert(rs[i].status == 400 && (rs[i].code == 11001 || rs[i].code == 11002),
                      "loser %d: status %ld code %ld", i, rs[i].status, rs[i].code);
        free(rs[i].body);
    }
    pthread_barrier_destroy(&bar);
    return wins;
}

Test(mint_durability, concurrent_double_spend_threads)
{
    const char *urls[] = {M.url};
    for (int round = 0; round < 5; round++)
        cr_assert_eq(race_once(urls, 1), 1, "round %d: exactly one swap may win", round);
}

Test(mint_durability, concurrent_double_spend_two_processes)
{
    /* A second mint process on the SAME database: the SQLite transaction,
     * not a mutex, must stop the double spend. Same seed -> same keys. */
    mp_start(&M2, M.db, NULL);
    json_t *r = NULL;
    cr_assert_eq(mp_http(M2.url, "/v1/keysets", NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r, "keysets"), 0),
                                                       "id")),
                     C.ks.id);
    json_decref(r);
    const char *urls[] = {M.url, M2.url};
    for (int round = 0; round < 5; round++)
        cr_assert_eq(race_once(urls, 2), 1, "round %d: exactly one swap may win", round);
}

Test(mint_durability, kill9_and_restart_keeps_state)
{
    uint64_t a[] = {32, 8, 2};
    dvm_proof ins[3];
    mc_mint(&C, a, 3, ins);
    /* Spend the 32 into 16+16. */
    uint64_t b[] = {16, 16};
    dvm_wallet_output outs[2];
    mc_outputs(&C, b, 2, outs);
    json_t *r = NULL, *req = mc_swap_req(&ins[0], 1, outs, 2);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    dvm_proof news[2];
    mc_unblind(&C, r, outs, 2, news);
    json_decref(r);
    json_decref(req);
    /* A quote created before the crash. */
    json_t *q = NULL;
    req = json_pack("{s:I, s:s}", "amount", (json_int_t)5, "unit", "sat");
    cr_assert_eq(mp_post_json(M.url, "/v1/mint/quote/bolt11", req, &q), 200);
    json_decref(req);
    char path[200];
    snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s",
             json_string_value(json_object_get(q, "quote")));

    int st = mp_stop(&M, SIGKILL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    char id_before[DVM_KEYSET_ID_MAX + 1];
    snprintf(id_before, sizeof id_before, "%s", C.ks.id);
    mc_free(&C);
    mp_start(&M, M.db, NULL);
    mc_init(&C, M.url);
    cr_assert_str_eq(C.ks.id, id_before, "the keyset survives a restart");

    /* The spent proof stays spent; the others, old and new, are spendable. */
    mc_outputs(&C, b, 2, outs);
    req = mc_swap_req(&ins[0], 1, outs, 2);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 400);
    cr_assert_eq(mp_code(r), 11001);
    json_decref(r);
    json_decref(req);
    dvm_proof spend[3] = {ins[1], ins[2], news[0]};
    uint64_t c[] = {16, 8, 2};
    dvm_wallet_output o3[3];
    mc_outputs(&C, c, 3, o3);
    req = mc_swap_req(spend, 3, o3, 3);
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    json_decref(r);
    json_decref(req);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "PAID");
    json_decref(r);
    json_decref(q);
}

Test(mint_durability, seed_file_must_match_database)
{
    char sf[300], db2[300];
    mp_tmp(sf, sizeof sf, "seed.hex");
    FILE *f = fopen(sf, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    fclose(f);
    /* A fresh database takes the seed file; the keyset is deterministic. */
    const char *const extra[] = {"--seed-file", sf, NULL};
    mp_start(&M2, mp_tmp(db2, sizeof db2, "seeded.db"), extra);
    json_t *r = NULL;
    cr_assert_eq(mp_http(M2.url, "/v1/keysets", NULL, 0, &r), 200);
    char id1[80];
    snprintf(id1, sizeof id1, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(r, "keysets"), 0), "id")));
    json_decref(r);
    mp_stop(&M2, SIGTERM);
    mp_start(&M2, db2, extra);
    cr_assert_eq(mp_http(M2.url, "/v1/keysets", NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r, "keysets"), 0), "id")),
                     id1);
    json_decref(r);
    mp_stop(&M2, SIGTERM);
    /* The first mint's database has another seed: refused. */
    char out[256];
    const char *args[] = {"mint", "--listen", "127.0.0.1:0", "--db", M.db, "--seed-file", sf, NULL};
    cr_assert_eq(mp_run(args, NULL, NULL, out, sizeof out), 1);
}

/* kill -9 while swaps are in flight: after a restart every swap is either
 * complete (input SPENT and its output signature restorable, NUT-09) or not
 * there at all (input UNSPENT, output never signed); every swap answered
 * 200 before the crash is complete. */
#define INFLIGHT 40

struct shooter {
    const char *url;
    char *bodies[INFLIGHT];
    long status[INFLIGHT];
    int next;
    pthread_mutex_t mu;
    int answered_ok;
};

static void *shoot(void *arg)
{
    struct shooter *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int i = s->next < INFLIGHT ? s->next++ : -1;
        pthread_mutex_unlock(&s->mu);
        if (i < 0)
            return NULL;
        json_t *r = NULL;
        s->status[i] = mp_http(s->url, "/v1/swap", s->bodies[i], strlen(s->bodies[i]), &r);
        json_decref(r);
        if (s->status[i] == 200) {
            pthread_mutex_lock(&s->mu);
            s->answered_ok++;
            pthread_mutex_unlock(&s->mu);
        }
    }
}

Test(mint_durability, kill9_mid_run_is_atomic)
{
    uint64_t ones[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        ones[i] = 1;
    dvm_proof ins[INFLIGHT];
    mc_mint(&C, ones, INFLIGHT, ins);
    dvm_wallet_output outs[INFLIGHT];
    mc_outputs(&C, ones, INFLIGHT, outs);
    struct shooter s = {.url = M.url};
    pthread_mutex_init(&s.mu, NULL);
    for (int i = 0; i < INFLIGHT; i++) {
        json_t *req = mc_swap_req(&ins[i], 1, &outs[i], 1);
        s.bodies[i] = json_dumps(req, JSON_COMPACT);
        json_decref(req);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, shoot, &s);
    /* Kill once some swaps were answered (bounded wait), others in flight. */
    uint64_t end = mp_now_ms() + 20000;
    for (;;) {
        pthread_mutex_lock(&s.mu);
        int ok = s.answered_ok;
        pthread_mutex_unlock(&s.mu);
        if (ok >= 5 || mp_now_ms() > end)
            break;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    int port = M.port;
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    mp_stop(&M, SIGKILL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_assert_geq(s.answered_ok, 5);
    mp_start_port(&M, db, port, NULL);

    json_t *ys = json_array();
    for (int i = 0; i < INFLIGHT; i++) {
        uint8_t Y[DVM_POINT_BYTES];
        char hex[67];
        dvm_cashu_proof_Y(C.ctx, &ins[i], Y);
        dvm_cashu_hex_encode(Y, DVM_POINT_BYTES, hex);
        json_array_append_new(ys, json_string(hex));
    }
    json_t *req = json_pack("{s:o}", "Ys", ys), *st = NULL, *rs = NULL;
    cr_assert_eq(mp_post_json(M.url, "/v1/checkstate", req, &st), 200);
    json_decref(req);
    req = json_pack("{s:o}", "outputs", mc_outputs_json(outs, INFLIGHT));
    cr_assert_eq(mp_post_json(M.url, "/v1/restore", req, &rs), 200);
    json_decref(req);
    json_t *restored = json_object_get(rs, "outputs");
    int complete = 0;
    for (int i = 0; i < INFLIGHT; i++) {
        const char *state = json_string_value(json_object_get(json_array_get(json_object_get(st, "states"), (size_t)i), "state"));
        char bhex[67];
        dvm_cashu_hex_encode(outs[i].msg.B_, DVM_POINT_BYTES, bhex);
        bool signed_ = false;
        for (size_t k = 0; k < json_array_size(restored); k++)
            signed_ |= strcmp(json_string_value(json_object_get(json_array_get(restored, k), "B_")), bhex) == 0;
        bool spent = strcmp(state, "SPENT") == 0;
        cr_assert_eq(spent, signed_, "swap %d: input %s but output %s", i, state,
                     signed_ ? "signed" : "not signed");
        cr_assert(strcmp(state, "PENDING") != 0);
        if (s.status[i] == 200)
            cr_assert(spent, "swap %d was answered 200 before the crash", i);
        complete += spent;
    }
    cr_assert_geq(complete, s.answered_ok);
    /* Every input not spent can still be swapped. */
    for (int i = 0; i < INFLIGHT; i++) {
        const char *state = json_string_value(json_object_get(json_array_get(json_object_get(st, "states"), (size_t)i), "state"));
        if (strcmp(state, "UNSPENT") != 0)
            continue;
        dvm_wallet_output o[1];
        mc_outputs(&C, ones, 1, o);
        json_t *r = NULL;
        req = mc_swap_req(&ins[i], 1, o, 1);
        cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
        json_decref(r);
        json_decref(req);
    }
    json_decref(st);
    json_decref(rs);
    for (int i = 0; i < INFLIGHT; i++)
        free(s.bodies[i]);
    pthread_mutex_destroy(&s.mu);
}

/* A melt interrupted between its two commits (inputs and quote PENDING) is
 * released when the mint starts again. The state is written with sqlite3
 * as the crash would have left it. */
Test(mint_durability, interrupted_melt_released_on_restart)
{
    uint64_t a[] = {4};
    dvm_proof in[1];
    mc_mint(&C, a, 1, in);
    json_t *q = NULL, *req = json_pack("{s:s, s:s}", "request", "lnbc40n1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq", "unit", "sat");
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/quote/bolt11", req, &q), 200);
    json_decref(req);
    const char *quote = json_string_value(json_object_get(q, "quote"));
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    int port = M.port;
    mp_stop(&M, SIGKILL);
    uint8_t Y[DVM_POINT_BYTES];
    char yhex[67], sql[1024], out[256];
    dvm_cashu_proof_Y(C.ctx, &in[0], Y);
    dvm_cashu_hex_encode(Y, DVM_POINT_BYTES, yhex);
    snprintf(sql, sizeof sql,
             "INSERT INTO proofs_used(y, state, quote, created) VALUES(x'%s', 1, '%s', 0);"
             "UPDATE melt_quotes SET state = 1 WHERE quote = '%s';", yhex, quote, quote);
    const char *args[] = {db, sql, NULL};
    cr_assert_eq(mp_exec("sqlite3", args, NULL, NULL, out, sizeof out), 0);
    mp_start_port(&M, db, port, NULL);
    json_t *r = NULL;
    req = json_pack("{s:[s]}", "Ys", yhex);
    cr_assert_eq(mp_post_json(M.url, "/v1/checkstate", req, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r, "states"), 0), "state")), "UNSPENT");
    json_decref(r);
    json_decref(req);
    char path[200];
    snprintf(path, sizeof path, "/v1/melt/quote/bolt11/%s", quote);
    cr_assert_eq(mp_http(M.url, path, NULL, 0, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "UNPAID");
    json_decref(r);
    /* And the melt can now go through, with NUT-08 change for the excess. */
    uint64_t one[] = {1, 1};
    dvm_wallet_output blanks[2];
    mc_outputs(&C, one, 2, blanks);
    req = json_pack("{s:s, s:o, s:o}", "quote", quote, "inputs", dvm_cashu_proofs_to_json(in, 1),
                    "outputs", mc_outputs_json(blanks, 2));
    cr_assert_eq(mp_post_json(M.url, "/v1/melt/bolt11", req, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "PAID");
    cr_assert(json_is_array(json_object_get(r, "change")));
    json_decref(r);
    json_decref(req);
    json_decref(q);
}

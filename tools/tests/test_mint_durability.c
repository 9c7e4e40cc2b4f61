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

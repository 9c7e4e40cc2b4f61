/* Token interop with @cashu/cashu-ts (ci/interop/cashu_token.mjs, node as a
 * peer only): tokens `dvm token encode` writes decode in cashu-ts to the same
 * fields, and tokens cashu-ts writes decode in `dvm token decode` to the same
 * fields; V3 encodings are byte-identical. Fails when node or
 * ci/interop/node_modules is missing (ci/setup installs them). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <jansson.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn_run.h"

#define PEER "ci/interop/cashu_token.mjs"
#define CASHU_TS "ci/interop/node_modules/@cashu/cashu-ts/package.json"

/* Run argv (argv[0] looked up in PATH) with `input` on stdin. */
static spawn_result spawn(const char *input, char *const argv[]) { return spawn_run(input, argv); }

static char dvm_path[4096];

static spawn_result dvm(const char *input, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {dvm_path, (char *)a1, (char *)a2, (char *)a3, NULL};
    return spawn(input, argv);
}

static spawn_result peer(const char *input, const char *mode, const char *version)
{
    char *argv[] = {"node", PEER, (char *)mode, (char *)version, NULL};
    return spawn(input, argv);
}

static void setup(void)
{
    struct stat st;
    if (stat(CASHU_TS, &st) != 0)
        cr_assert_fail("%s missing (run ci/setup or npm ci in ci/interop)", CASHU_TS);
    char *probe[] = {"node", "--version", NULL};
    spawn_result r = spawn(NULL, probe);
    int ok = r.code == 0;
    spawn_result_free(&r);
    if (!ok)
        cr_assert_fail("node is not installed (run ci/setup)");
    const char *dir = getenv("DVM_BIN");
    cr_assert_not_null(dir);
    snprintf(dvm_path, sizeof dvm_path, "%s/dvm", dir);
}

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, s);
    return j;
}

/* The fields both sides must agree on: mint, unit, memo, and per proof
 * amount, id, secret, C and dleq. */
static const json_t *find_proof(const json_t *ps, const json_t *secret)
{
    for (size_t i = 0; i < json_array_size(ps); i++)
        if (json_equal(json_object_get(json_array_get(ps, i), "secret"), secret))
            return json_array_get(ps, i);
    return NULL;
}

/* any_order: cashu-ts groups V4 proofs by keyset id, so interleaved ids come
 * back reordered; match proofs by secret then. */
static void expect_same(const json_t *want, const json_t *got, const char *what, bool any_order)
{
    static const char *top[] = {"mint", "unit"};
    for (size_t i = 0; i < 2; i++)
        cr_assert(json_equal(json_object_get(want, top[i]), json_object_get(got, top[i])),
                  "%s: %s differs", what, top[i]);
    const json_t *wm = json_object_get(want, "memo"), *gm = json_object_get(got, "memo");
    cr_assert((json_is_null(wm) || !wm) ? (!gm || json_is_null(gm)) : json_equal(wm, gm),
              "%s: memo differs", what);
    const json_t *wp = json_object_get(want, "proofs"), *gp = json_object_get(got, "proofs");
    cr_assert_eq(json_array_size(wp), json_array_size(gp), "%s: proof count", what);
    for (size_t i = 0; i < json_array_size(wp); i++) {
        static const char *f[] = {"amount", "id", "secret", "C", "dleq"};
        const json_t *w = json_array_get(wp, i);
        const json_t *g = any_order ? find_proof(gp, json_object_get(w, "secret"))
                                    : json_array_get(gp, i);
        cr_assert_not_null(g, "%s: proof %zu missing", what, i);
        for (size_t k = 0; k < 5; k++)
            cr_assert(json_equal(json_object_get(w, f[k]), json_object_get(g, f[k])) ||
                          (!json_object_get(w, f[k]) && !json_object_get(g, f[k])),
                      "%s: proof %zu %s differs", what, i, f[k]);
    }
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '='))
        s[--n] = '\0';
}

/* One token description through both directions, both versions. */
static void check_both_ways(const char *json)
{
    json_t *want = parse(json);
    for (int v = 3; v <= 4; v++) {
        char vs[2] = {(char)('0' + v), 0};
        /* dvm encodes, cashu-ts decodes */
        spawn_result ours = dvm(json, "token", "encode", v == 3 ? "--v3" : "--v4");
        cr_assert_eq(ours.code, 0, "dvm encode: %s", ours.err);
        spawn_result theirs_dec = peer(ours.out, "decode", NULL);
        cr_assert_eq(theirs_dec.code, 0, "cashu-ts decode of %s: %s", ours.out, theirs_dec.err);
        json_t *g = parse(theirs_dec.out);
        expect_same(want, g, v == 3 ? "dvm v3 -> cashu-ts" : "dvm v4 -> cashu-ts", false);
        json_decref(g);
        /* cashu-ts encodes, dvm decodes */
        spawn_result theirs = peer(json, "encode", vs);
        cr_assert_eq(theirs.code, 0, "cashu-ts encode: %s", theirs.err);
        cr_assert(strncmp(theirs.out, v == 3 ? "cashuA" : "cashuB", 6) == 0, "%s", theirs.out);
        trim(theirs.out);
        spawn_result ours_dec = dvm(NULL, "token", "decode", theirs.out);
        cr_assert_eq(ours_dec.code, 0, "dvm decode of %s: %s", theirs.out, ours_dec.err);
        g = parse(ours_dec.out);
        cr_assert_eq(json_integer_value(json_object_get(g, "version")), v);
        expect_same(want, g, v == 3 ? "cashu-ts v3 -> dvm" : "cashu-ts v4 -> dvm", v == 4);
        json_decref(g);
        /* V3 JSON is written the same way by both. */
        if (v == 3) {
            trim(ours.out);
            cr_assert_str_eq(ours.out, theirs.out, "V3 encodings differ");
        }
        spawn_result_free(&ours);
        spawn_result_free(&theirs_dec);
        spawn_result_free(&theirs);
        spawn_result_free(&ours_dec);
    }
    json_decref(want);
}

#define C1 "02bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"
#define C2 "0273129c5719e599379a974a626363c333c56cafc0e6d01abe46d5808280789c63"
#define H32(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

Test(interop_token, fixed_tokens_both_ways, .init = setup)
{
    check_both_ways("{\"mint\":\"http://localhost:3338\",\"unit\":\"sat\",\"memo\":\"Thank you\","
                    "\"proofs\":[{\"amount\":1,\"id\":\"00ad268c4d1f5826\",\"secret\":"
                    "\"9a6dbb847bd232ba76db0df197216b29d3b8cc14553cd27827fc1cc942fedb4e\",\"C\":"
                    "\"038618543ffb6b8695df4ad4babcde92a34a96bdcd97dcee0d7ccf98d472126792\"}]}");
    /* dleq, several keysets (interleaved), unusual memo and secret, an amount
     * of 2^31 (cashu-ts 2.5.3 cannot write V4 integers of 2^32 or more) */
    check_both_ways(
        "{\"mint\":\"https://mint.example:3338/path\",\"unit\":\"usd\","
        "\"memo\":\"h\\u00e9llo \\u2615 \\\"quoted\\\"\\n/\\\\\",\"proofs\":["
        "{\"amount\":2147483648,\"id\":\"00ffd48b8f5ecf80\",\"secret\":\"[\\\"P2PK\\\",{}]\","
        "\"C\":\"" C1 "\",\"dleq\":{\"e\":\"" H32("ab") "\",\"s\":\"" H32("cd") "\",\"r\":\"" H32(
            "ef") "\"}},"
        "{\"amount\":2,\"id\":\"00ad268c4d1f5826\",\"secret\":\"s2\",\"C\":\"" C2 "\"},"
        "{\"amount\":4,\"id\":\"00ffd48b8f5ecf80\",\"secret\":\"s3\",\"C\":\"" C1 "\","
        "\"dleq\":{\"e\":\"" H32("01") "\",\"s\":\"" H32("02") "\",\"r\":\"" H32("03") "\"}}]}");
}

static uint64_t rs = 0x1234567;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void hex(char *out, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        sprintf(out + 2 * i, "%02x", (unsigned)(rnd() & 0xff));
}

Test(interop_token, seeded_random_tokens_both_ways, .init = setup)
{
    for (int iter = 0; iter < 6; iter++) {
        json_t *ps = json_array();
        size_t n = 1 + rnd() % 8;
        char ids[2][67];
        hex(ids[0], 8);
        hex(ids[1], iter % 2 ? 33 : 8);
        ids[1][0] = ids[1][1] = '0';
        for (size_t i = 0; i < n; i++) {
            char secret[65], C[67], e[65], s[65], r[65];
            hex(secret, 32);
            hex(C, 33);
            C[0] = '0';
            C[1] = rnd() % 2 ? '2' : '3';
            json_t *p = json_pack("{s:I, s:s, s:s, s:s}", "amount",
                                  (json_int_t)((json_int_t)1 << (rnd() % 32)), "id",
                                  ids[rnd() % 2], "secret", secret, "C", C);
            if (rnd() % 2) {
                hex(e, 32);
                hex(s, 32);
                hex(r, 32);
                json_object_set_new(p, "dleq", json_pack("{s:s, s:s, s:s}", "e", e, "s", s, "r", r));
            }
            json_array_append_new(ps, p);
        }
        json_t *t = json_pack("{s:s, s:s, s:o}", "mint", "https://m.example", "unit", "sat",
                              "proofs", ps);
        if (rnd() % 2)
            json_object_set_new(t, "memo", json_string("memo"));
        char *js = json_dumps(t, JSON_COMPACT);
        check_both_ways(js);
        free(js);
        json_decref(t);
    }
}

/* `dvm token decode|encode`: runs $DVM_BIN/dvm on the NUT-00 vectors and on
 * bad input; checks exit codes, stderr reasons and the JSON on stdout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn_run.h"

#define VECTORS "fixtures/vectors/cashu/nut-00-tokens.json"

/* Run dvm with args (NULL-terminated after "dvm") and `input` on stdin. */
static spawn_result dvm(const char *input, const char *const *args)
{
    const char *dir = getenv("DVM_BIN");
    cr_assert_not_null(dir, "DVM_BIN is not set");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/dvm", dir);
    char *argv[16];
    int argc = 0;
    argv[argc++] = bin;
    for (; args[argc - 1] && argc < 15; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    return spawn_run(input, argv);
}

#define DVM(input, ...) dvm(input, (const char *const[]){__VA_ARGS__, NULL})

static json_t *vectors(void)
{
    json_error_t e;
    json_t *v = json_load_file(VECTORS, 0, &e);
    cr_assert_not_null(v, "%s: %s", VECTORS, e.text);
    return v;
}

static json_t *parse_out(const spawn_result *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    cr_assert_not_null(j, "stdout is not JSON (%s): %s", e.text, r->out);
    return j;
}

static void assert_one_line_reason(const spawn_result *r, const char *needle)
{
    cr_assert_gt(strlen(r->err), 0, "no reason on stderr");
    char *nl = strchr(r->err, '\n');
    cr_assert(nl && nl[1] == '\0', "reason is not one line: '%s'", r->err);
    cr_assert(strncmp(r->err, "dvm token", 9) == 0, "%s", r->err);
    if (needle)
        cr_assert(strstr(r->err, needle), "reason '%s' lacks '%s'", r->err, needle);
}

static size_t unpadded(const char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '=' || s[n - 1] == '\n'))
        n--;
    return n;
}

Test(cli_token, decode_vectors_to_json)
{
    json_t *v = vectors();
    const json_t *valid = json_object_get(v, "valid");
    for (size_t i = 0; i < json_array_size(valid); i++) {
        const json_t *c = json_array_get(valid, i);
        const char *tok = json_string_value(json_object_get(c, "token"));
        const json_t *x = json_object_get(c, "expect");
        spawn_result r = DVM(NULL, "token", "decode", tok);
        cr_assert_eq(r.code, 0, "%s: exit %d: %s", tok, r.code, r.err);
        cr_assert_str_empty(r.err);
        json_t *j = parse_out(&r);
        cr_assert(json_equal(json_object_get(j, "version"), json_object_get(x, "version")));
        cr_assert_str_eq(json_string_value(json_object_get(j, "mint")),
                         json_string_value(json_object_get(x, "mint")));
        cr_assert_str_eq(json_string_value(json_object_get(j, "unit")),
                         json_string_value(json_object_get(x, "unit")));
        cr_assert(json_equal(json_object_get(j, "memo"), json_object_get(x, "memo")),
                  "memo differs");
        const json_t *ps = json_object_get(j, "proofs"), *xs = json_object_get(x, "proofs");
        cr_assert_eq(json_array_size(ps), json_array_size(xs));
        json_int_t sum = 0;
        for (size_t k = 0; k < json_array_size(xs); k++) {
            const json_t *p = json_array_get(ps, k), *q = json_array_get(xs, k);
            for (const char *const *f = (const char *const[]){"amount", "id", "secret", "C", NULL};
                 *f; f++)
                cr_assert(json_equal(json_object_get(p, *f), json_object_get(q, *f)),
                          "proof %zu field %s", k, *f);
            cr_assert(json_is_false(json_object_get(p, "has_dleq")));
            cr_assert_null(json_object_get(p, "dleq"));
            sum += json_integer_value(json_object_get(q, "amount"));
        }
        cr_assert_eq(json_integer_value(json_object_get(j, "amount")), sum);
        json_decref(j);
        spawn_result_free(&r);
    }
    json_decref(v);
}

Test(cli_token, decode_from_stdin)
{
    json_t *v = vectors();
    const char *tok =
        json_string_value(json_object_get(json_array_get(json_object_get(v, "valid"), 3), "token"));
    char *in = malloc(strlen(tok) + 8);
    sprintf(in, "  %s\n", tok);
    spawn_result r = DVM(in, "token", "decode", "--compact", "-");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(strchr(r.out, '\n'), r.out + strlen(r.out) - 1, "--compact prints one line");
    json_t *j = parse_out(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(j, "memo")), "Thank you");
    json_decref(j);
    spawn_result_free(&r);
    free(in);
    json_decref(v);
}

Test(cli_token, bad_tokens_exit_1_with_a_reason)
{
    json_t *v = vectors();
    const json_t *bad = json_object_get(v, "invalid");
    for (size_t i = 0; i < json_array_size(bad); i++) {
        spawn_result r = DVM(NULL, "token", "decode",
                    json_string_value(json_object_get(json_array_get(bad, i), "token")));
        cr_assert_eq(r.code, 1);
        cr_assert_str_empty(r.out);
        assert_one_line_reason(&r, "prefix");
        spawn_result_free(&r);
    }
    json_decref(v);
    const char *cases[][2] = {
        {"cashuA", "empty"},
        {"cashuBAAAA", "CBOR"},
        {"cashuA!!!!", "base64"},
        {"cashuZeyJ9", "version"},
        /* {"token":[{"mint":"a","proofs":[...]},{"mint":"b",...}]} */
        {"cashuAeyJ0b2tlbiI6W3sibWludCI6ImEiLCJwcm9vZnMiOlt7ImFtb3VudCI6MSwiaWQiOiIwMGZmIiwic2Vjcm"
         "V0IjoieCIsIkMiOiIwMmJjOTA5Nzk5N2Q4MWFmYjJjYzczNDZiNWU0MzQ1YTkzNDZiZDJhNTA2ZWI3OTU4NTk4YT"
         "cyZjBjZjg1MTYzZWEifV19LHsibWludCI6ImIiLCJwcm9vZnMiOlt7ImFtb3VudCI6MSwiaWQiOiIwMGZmIiwic2"
         "VjcmV0IjoieSIsIkMiOiIwMmJjOTA5Nzk5N2Q4MWFmYjJjYzczNDZiNWU0MzQ1YTkzNDZiZDJhNTA2ZWI3OTU4NT"
         "k4YTcyZjBjZjg1MTYzZWEifV19XX0",
         "several mints"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spawn_result r = DVM(NULL, "token", "decode", cases[i][0]);
        cr_assert_eq(r.code, 1, "%s: exit %d", cases[i][0], r.code);
        cr_assert_str_empty(r.out);
        assert_one_line_reason(&r, cases[i][1]);
        spawn_result_free(&r);
    }
    spawn_result r = DVM("", "token", "decode", "-");
    cr_assert_eq(r.code, 1);
    assert_one_line_reason(&r, NULL);
    spawn_result_free(&r);
}

/* decode | encode --vN gives the vector back (padding aside). */
Test(cli_token, encode_round_trips_the_vectors)
{
    json_t *v = vectors();
    const json_t *valid = json_object_get(v, "valid");
    for (size_t i = 0; i < json_array_size(valid); i++) {
        const json_t *c = json_array_get(valid, i);
        const char *tok = json_string_value(json_object_get(c, "token"));
        spawn_result d = DVM(NULL, "token", "decode", tok);
        cr_assert_eq(d.code, 0);
        json_t *j = parse_out(&d);
        int version = (int)json_integer_value(json_object_get(j, "version"));
        spawn_result e = DVM(d.out, "token", "encode", version == 3 ? "--v3" : "--v4");
        cr_assert_eq(e.code, 0, "%s", e.err);
        cr_assert_eq(unpadded(e.out), unpadded(tok), "%s\n%s", e.out, tok);
        cr_assert(strncmp(e.out, tok, unpadded(tok)) == 0, "%s\n%s", e.out, tok);
        /* Without a flag, the JSON's version is used. */
        spawn_result e2 = DVM(d.out, "token", "encode");
        cr_assert_eq(e2.code, 0);
        cr_assert_str_eq(e2.out, e.out);
        /* The other version decodes to the same JSON (version aside). */
        spawn_result e3 = DVM(d.out, "token", "encode", version == 3 ? "--v4" : "--v3");
        cr_assert_eq(e3.code, 0);
        cr_assert(strncmp(e3.out, version == 3 ? "cashuB" : "cashuA", 6) == 0);
        e3.out[unpadded(e3.out)] = '\0';
        spawn_result d3 = DVM(NULL, "token", "decode", e3.out);
        cr_assert_eq(d3.code, 0, "%s", d3.err);
        json_t *j3 = parse_out(&d3);
        json_object_del(j, "version");
        json_object_del(j3, "version");
        cr_assert(json_equal(j, j3), "cross-version JSON differs:\n%s\n%s", d.out, d3.out);
        json_decref(j3);
        json_decref(j);
        spawn_result_free(&d);
        spawn_result_free(&e);
        spawn_result_free(&e2);
        spawn_result_free(&e3);
        spawn_result_free(&d3);
    }
    json_decref(v);
}

#define C1 "02bc9097997d81afb2cc7346b5e4345a9346bd2a506eb7958598a72f0cf85163ea"
#define H32(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

Test(cli_token, encode_keeps_dleq)
{
    const char *in = "{\"mint\":\"https://mint.example\",\"proofs\":[{\"amount\":8,\"id\":"
                     "\"00ad268c4d1f5826\",\"secret\":\"s\",\"C\":\"" C1 "\",\"dleq\":{\"e\":\"" H32(
                         "ab") "\",\"s\":\"" H32("cd") "\",\"r\":\"" H32("ef") "\"}}]}";
    for (int v = 3; v <= 4; v++) {
        spawn_result e = DVM(in, "token", "encode", v == 3 ? "--v3" : "--v4");
        cr_assert_eq(e.code, 0, "%s", e.err);
        e.out[unpadded(e.out)] = '\0';
        spawn_result d = DVM(NULL, "token", "decode", e.out);
        cr_assert_eq(d.code, 0, "%s", d.err);
        json_t *j = parse_out(&d);
        cr_assert_eq(json_integer_value(json_object_get(j, "version")), v);
        cr_assert_str_eq(json_string_value(json_object_get(j, "unit")), "sat");
        cr_assert(json_is_null(json_object_get(j, "memo")));
        cr_assert_eq(json_integer_value(json_object_get(j, "amount")), 8);
        const json_t *p = json_array_get(json_object_get(j, "proofs"), 0);
        cr_assert(json_is_true(json_object_get(p, "has_dleq")));
        const json_t *dl = json_object_get(p, "dleq");
        cr_assert_str_eq(json_string_value(json_object_get(dl, "e")), H32("ab"));
        cr_assert_str_eq(json_string_value(json_object_get(dl, "s")), H32("cd"));
        cr_assert_str_eq(json_string_value(json_object_get(dl, "r")), H32("ef"));
        json_decref(j);
        spawn_result_free(&e);
        spawn_result_free(&d);
    }
}

Test(cli_token, encode_rejects_bad_json)
{
    const char *cases[][2] = {
        {"not json", "bad JSON"},
        {"[]", "object"},
        {"{\"proofs\":[]}", "mint"},
        {"{\"mint\":\"m\",\"proofs\":[]}", "proofs"},
        {"{\"mint\":\"m\",\"proofs\":[{\"amount\":-1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"" C1
         "\"}]}",
         "amount"},
        {"{\"mint\":\"m\",\"amount\":3,\"proofs\":[{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\","
         "\"C\":\"" C1 "\"}]}",
         "sum"},
        {"{\"mint\":\"m\",\"proofs\":[{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"" C1
         "\",\"has_dleq\":true}]}",
         "has_dleq"},
        {"{\"mint\":\"m\",\"version\":5,\"proofs\":[{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\","
         "\"C\":\"" C1 "\"}]}",
         "version"},
        {"{\"mint\":\"m\",\"proofs\":[{\"amount\":1,\"id\":\"00ff\",\"secret\":\"s\",\"C\":\"02\"}]}",
         "C"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spawn_result r = DVM(cases[i][0], "token", "encode", "--v4");
        cr_assert_eq(r.code, 1, "case %zu: exit %d", i, r.code);
        cr_assert_str_empty(r.out);
        assert_one_line_reason(&r, cases[i][1]);
        spawn_result_free(&r);
    }
}

Test(cli_token, usage)
{
    spawn_result r = DVM(NULL, "token", "--help");
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "dvm token decode"));
    spawn_result_free(&r);
    r = DVM(NULL, "token");
    cr_assert_eq(r.code, 2);
    spawn_result_free(&r);
    r = DVM(NULL, "token", "frob");
    cr_assert_eq(r.code, 2);
    spawn_result_free(&r);
    r = DVM(NULL, "token", "decode");
    cr_assert_eq(r.code, 2);
    spawn_result_free(&r);
    r = DVM("{}", "token", "encode", "--v3", "--v4");
    cr_assert_eq(r.code, 2);
    spawn_result_free(&r);
    r = DVM(NULL, "--help");
    cr_assert(strstr(r.out, "token"), "dvm --help lists token");
    spawn_result_free(&r);
}

/* dvm token decode|encode: Cashu tokens (NUT-00 V3 cashuA / V4 cashuB,
 * NUT-12 dleq) to JSON and back, through core/cashu/token.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"
#include "dvm/cli.h"

#define JSON_INPUT_MAX ((size_t)4 << 20) /* bytes of JSON read by `encode` */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm token decode [--compact] TOKEN|-\n"
            "       dvm token encode [--v3|--v4] [FILE|-]\n"
            "\n"
            "Cashu tokens (NUT-00): V3 \"cashuA...\" (JSON) and V4 \"cashuB...\" (CBOR),\n"
            "with the NUT-12 dleq of each proof.\n"
            "\n"
            "decode  prints the token as JSON: {\"version\": 3|4, \"mint\", \"unit\",\n"
            "        \"memo\" (null when absent), \"amount\" (sats, the sum), \"proofs\":\n"
            "        [{\"amount\", \"id\", \"secret\", \"C\", \"has_dleq\", \"dleq\": {\"e\",\n"
            "        \"s\", \"r\"} when present}]}. TOKEN '-' reads it from stdin\n"
            "        (surrounding whitespace ignored). --compact prints one line.\n"
            "encode  reads that JSON (stdin, or FILE) and prints the token. --v3 or\n"
            "        --v4 picks the format; without either, the JSON's \"version\",\n"
            "        else V4. \"unit\" defaults to sat, \"version\", \"amount\" and\n"
            "        \"has_dleq\" are optional and must agree with the proofs if given.\n"
            "\n"
            "Exit status: 0 ok, 1 bad token or JSON (one-line reason on stderr),\n"
            "2 usage error.\n");
}

/* Read all of f, at most max bytes; NULL (and *too_big) when larger. */
static char *read_all(FILE *f, size_t max, size_t *len, int *too_big)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    *too_big = 0;
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            *too_big = 1;
            free(buf);
            return NULL;
        }
        if (got == 0)
            break;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (!buf)
        return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static json_t *token_to_json(const dvm_token *t)
{
    uint64_t amount = 0;
    if (dvm_token_amount(t, &amount) != DVM_OK)
        return NULL;
    json_t *proofs = json_array();
    json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:I, s:o}", "version", t->version, "mint",
                          t->mint, "unit", t->unit, "memo",
                          t->has_memo ? json_string(t->memo) : json_null(), "amount",
                          (json_int_t)amount, "proofs", proofs);
    if (!o)
        return NULL;
    for (size_t i = 0; i < t->n_proofs; i++) {
        json_t *p = dvm_token_proof_to_json(&t->proofs[i]);
        if (!p || json_object_set_new(p, "has_dleq", json_boolean(t->proofs[i].has_dleq)) ||
            json_array_append_new(proofs, p)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int cmd_decode(int argc, char **argv)
{
    const char *arg = NULL;
    int compact = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--compact") == 0) {
            compact = 1;
        } else if (arg) {
            fprintf(stderr, "dvm token decode: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else {
            arg = argv[i];
        }
    }
    if (!arg) {
        fprintf(stderr, "dvm token decode: missing TOKEN (or - for stdin)\n");
        return 2;
    }
    char *in = NULL;
    const char *s = arg;
    size_t len = strlen(arg);
    if (strcmp(arg, "-") == 0) {
        int too_big;
        in = read_all(stdin, DVM_TOKEN_MAX_BYTES + 4096, &len, &too_big);
        if (!in) {
            fprintf(stderr, "dvm token decode: %s\n",
                    too_big ? "token on stdin is too large" : "cannot read stdin");
            return 1;
        }
        s = in;
        while (len && is_space(*s)) {
            s++;
            len--;
        }
        while (len && is_space(s[len - 1]))
            len--;
    }
    dvm_token t;
    char why[256];
    dvm_err e = dvm_token_decode(s, len, &t, why, sizeof why);
    free(in);
    if (e) {
        fprintf(stderr, "dvm token decode: %s\n", why[0] ? why : dvm_strerror(e));
        return 1;
    }
    json_t *o = token_to_json(&t);
    dvm_token_free(&t);
    if (!o) {
        fprintf(stderr, "dvm token decode: cannot build the JSON\n");
        return 1;
    }
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | (compact ? JSON_COMPACT : JSON_INDENT(2)));
    json_decref(o);
    if (!text) {
        fprintf(stderr, "dvm token decode: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* Fill a string field of t from the JSON; -1 with a message on error. */
static int take_str(const json_t *root, const char *key, char *dst, size_t cap, int required,
                    bool *present)
{
    const json_t *v = json_object_get(root, key);
    if (present)
        *present = false;
    if (!v || json_is_null(v)) {
        if (required) {
            fprintf(stderr, "dvm token encode: missing \"%s\"\n", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        fprintf(stderr, "dvm token encode: \"%s\" must be a string\n", key);
        return -1;
    }
    if (json_string_length(v) >= cap) {
        fprintf(stderr, "dvm token encode: \"%s\" is over %zu bytes\n", key, cap - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    if (present)
        *present = true;
    return 0;
}

static int json_to_token(const json_t *root, dvm_token *t, int *version)
{
    memset(t, 0, sizeof *t);
    if (!json_is_object(root)) {
        fprintf(stderr, "dvm token encode: the input must be a JSON object\n");
        return -1;
    }
    const json_t *v = json_object_get(root, "version");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || (json_integer_value(v) != 3 && json_integer_value(v) != 4)) {
            fprintf(stderr, "dvm token encode: \"version\" must be 3 or 4\n");
            return -1;
        }
        if (*version == 0)
            *version = (int)json_integer_value(v);
    }
    if (take_str(root, "mint", t->mint, sizeof t->mint, 1, NULL) ||
        take_str(root, "unit", t->unit, sizeof t->unit, 0, &t->has_unit) ||
        take_str(root, "memo", t->memo, sizeof t->memo, 0, &t->has_memo))
        return -1;
    if (!t->has_unit)
        strcpy(t->unit, "sat");
    const json_t *ps = json_object_get(root, "proofs");
    if (!json_is_array(ps) || json_array_size(ps) == 0) {
        fprintf(stderr, "dvm token encode: \"proofs\" must be a non-empty array\n");
        return -1;
    }
    if (json_array_size(ps) > DVM_TOKEN_MAX_PROOFS) {
        fprintf(stderr, "dvm token encode: more than %d proofs\n", DVM_TOKEN_MAX_PROOFS);
        return -1;
    }
    t->proofs = calloc(json_array_size(ps), sizeof *t->proofs);
    if (!t->proofs) {
        fprintf(stderr, "dvm token encode: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ps); i++) {
        const json_t *pj = json_array_get(ps, i);
        char why[256];
        if (dvm_token_proof_from_json(pj, &t->proofs[i], why, sizeof why)) {
            fprintf(stderr, "dvm token encode: proof %zu: %s\n", i, why);
            return -1;
        }
        t->n_proofs = i + 1;
        const json_t *hd = json_object_get(pj, "has_dleq");
        if (hd && (!json_is_boolean(hd) || json_is_true(hd) != t->proofs[i].has_dleq)) {
            fprintf(stderr, "dvm token encode: proof %zu: has_dleq disagrees with dleq\n", i);
            return -1;
        }
    }
    char why[256];
    if (dvm_token_validate(t, why, sizeof why)) {
        fprintf(stderr, "dvm token encode: %s\n", why);
        return -1;
    }
    const json_t *a = json_object_get(root, "amount");
    uint64_t sum = 0;
    dvm_token_amount(t, &sum);
    if (a && !json_is_null(a) &&
        (!json_is_integer(a) || json_integer_value(a) < 0 ||
         (uint64_t)json_integer_value(a) != sum)) {
        fprintf(stderr, "dvm token encode: \"amount\" is not the sum of the proofs (%llu)\n",
                (unsigned long long)sum);
        return -1;
    }
    return 0;
}

static int cmd_encode(int argc, char **argv)
{
    int version = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--v3") == 0 || strcmp(argv[i], "--v4") == 0) {
            int want = argv[i][3] - '0';
            if (version && version != want) {
                fprintf(stderr, "dvm token encode: --v3 and --v4 exclude each other\n");
                return 2;
            }
            version = want;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "dvm token encode: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (file) {
            fprintf(stderr, "dvm token encode: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else {
            file = argv[i];
        }
    }
    FILE *f = stdin;
    if (file && strcmp(file, "-") != 0) {
        f = fopen(file, "rb");
        if (!f) {
            fprintf(stderr, "dvm token encode: cannot open '%s'\n", file);
            return 1;
        }
    }
    size_t len = 0;
    int too_big;
    char *in = read_all(f, JSON_INPUT_MAX, &len, &too_big);
    if (f != stdin)
        fclose(f);
    if (!in) {
        fprintf(stderr, "dvm token encode: %s\n",
                too_big ? "input JSON is too large" : "cannot read the input");
        return 1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr);
    free(in);
    if (!root) {
        fprintf(stderr, "dvm token encode: bad JSON at line %d: %s\n", jerr.line, jerr.text);
        return 1;
    }
    dvm_token t;
    int rc = json_to_token(root, &t, &version);
    json_decref(root);
    if (rc) {
        dvm_token_free(&t);
        return 1;
    }
    dvm_buf b;
    dvm_buf_init(&b, 0);
    dvm_err e = dvm_token_encode(&t, version ? version : 4, &b);
    dvm_token_free(&t);
    if (e) {
        fprintf(stderr, "dvm token encode: %s\n", dvm_strerror(e));
        dvm_buf_free(&b);
        return 1;
    }
    printf("%.*s\n", (int)b.len, (const char *)b.data);
    dvm_buf_free(&b);
    return 0;
}

int dvm_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "dvm token: missing subcommand (decode or encode); see 'dvm token --help'\n");
        return 2;
    }
    if (dvm_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "decode") == 0)
        return cmd_decode(argc - 1, argv + 1);
    if (strcmp(argv[1], "encode") == 0)
        return cmd_encode(argc - 1, argv + 1);
    fprintf(stderr, "dvm token: unknown subcommand '%s' (decode or encode)\n", argv[1]);
    return 2;
}

#define _DEFAULT_SOURCE
#include "scenario.h"
#include "common/err.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The built-in default: 200 providers, 1000 customers, 500 jobs; honest
 * peers, a mildly variable network, no faults. */
static const char default_json[] =
    "{\n"
    "  \"seed\": 1,\n"
    "  \"duration_s\": 600,\n"
    "  \"jobs\": 500,\n"
    "  \"kind\": 5100,\n"
    "  \"providers\": {\n"
    "    \"count\": 200,\n"
    "    \"max_jobs\": 3,\n"
    "    \"sats_per_chunk_min\": 1,\n"
    "    \"sats_per_chunk_max\": 3,\n"
    "    \"chunks_per_payment\": 10,\n"
    "    \"payment_timeout_ms\": 30000,\n"
    "    \"chunks_min\": 20,\n"
    "    \"chunks_max\": 100,\n"
    "    \"chunk_bytes\": 48,\n"
    "    \"chunk_rate_hz\": 50,\n"
    "    \"max_unclaimed_sats\": 100000,\n"
    "    \"take_and_stop\": 0,\n"
    "    \"early_ask\": 0,\n"
    "    \"stall\": 0\n"
    "  },\n"
    "  \"customers\": {\n"
    "    \"count\": 1000,\n"
    "    \"arrival_rate_hz\": 100,\n"
    "    \"budget_min\": 100,\n"
    "    \"budget_max\": 400,\n"
    "    \"max_sats_per_chunk\": 5,\n"
    "    \"prepay_window\": 0,\n"
    "    \"choice\": \"random\",\n"
    "    \"choice_sample\": 8,\n"
    "    \"timeout_ms\": 30000,\n"
    "    \"retries\": 3,\n"
    "    \"never_pay\": 0,\n"
    "    \"double_spend\": 0,\n"
    "    \"forge\": 0,\n"
    "    \"untrusted_mint\": 0,\n"
    "    \"replay\": 0\n"
    "  },\n"
    "  \"network\": {\n"
    "    \"latency\": \"lognormal\",\n"
    "    \"latency_ms\": 20,\n"
    "    \"latency_max_ms\": 40,\n"
    "    \"latency_sigma\": 0.5,\n"
    "    \"jitter_ms\": 2,\n"
    "    \"loss\": 0,\n"
    "    \"rto_ms\": 200,\n"
    "    \"bandwidth_kbps\": 10000,\n"
    "    \"connect_rtts\": 1,\n"
    "    \"partitions\": [],\n"
    "    \"disconnects\": []\n"
    "  },\n"
    "  \"mint\": {\n"
    "    \"latency_ms\": 30,\n"
    "    \"input_fee_ppk\": 0,\n"
    "    \"outages\": []\n"
    "  }\n"
    "}\n";

const char *sim_scenario_default_json(void) { return default_json; }

struct sim_scenario_builder {
    json_t *root;
};

sim_scenario_builder *sim_scenario_builder_new(void)
{
    sim_scenario_builder *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    json_error_t je;
    b->root = json_loads(default_json, 0, &je);
    if (!b->root) {
        free(b);
        return NULL;
    }
    return b;
}

void sim_scenario_builder_free(sim_scenario_builder *b)
{
    if (!b)
        return;
    json_decref(b->root);
    free(b);
}

static int is_number(const json_t *v) { return json_is_integer(v) || json_is_real(v); }

/* A value may replace a default of the same JSON type; numbers replace
 * numbers (integer-ness is checked when building). */
static int compatible(const json_t *def, const json_t *v)
{
    if (is_number(def))
        return is_number(v);
    if (json_is_string(def))
        return json_is_string(v);
    if (json_is_array(def))
        return json_is_array(v);
    if (json_is_boolean(def))
        return json_is_boolean(v);
    if (json_is_object(def))
        return json_is_object(v);
    return 0;
}

static dvm_err merge(json_t *dst, json_t *src, const char *path, char *err, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(src, key, v) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        json_t *d = json_object_get(dst, key);
        if (!d) {
            dvm_reasonf(err, n, "unknown scenario field '%s'", sub);
            return DVM_ERR_NOT_FOUND;
        }
        if (!compatible(d, v)) {
            dvm_reasonf(err, n, "scenario field '%s' has the wrong type", sub);
            return DVM_ERR_INVALID;
        }
        if (json_is_object(d)) {
            dvm_err e = merge(d, v, sub, err, n);
            if (e)
                return e;
        } else if (json_object_set(dst, key, v) != 0) {
            return DVM_ERR_NOMEM;
        }
    }
    return DVM_OK;
}

dvm_err sim_scenario_merge_json(sim_scenario_builder *b, const char *text, char *err, size_t err_len)
{
    if (strlen(text) > (1u << 20)) {
        dvm_reasonf(err, err_len, "scenario larger than 1 MiB");
        return DVM_ERR_TOO_LARGE;
    }
    json_error_t je;
    json_t *src = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!src) {
        dvm_reasonf(err, err_len, "scenario JSON: %s (line %d)", je.text, je.line);
        return DVM_ERR_INVALID;
    }
    if (!json_is_object(src)) {
        json_decref(src);
        dvm_reasonf(err, err_len, "scenario must be a JSON object");
        return DVM_ERR_INVALID;
    }
    dvm_err e = merge(b->root, src, "", err, err_len);
    json_decref(src);
    return e;
}

dvm_err sim_scenario_set(sim_scenario_builder *b, const char *assignment, char *err, size_t err_len)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        dvm_reasonf(err, err_len, "--set wants PATH=VALUE, got '%s'", assignment);
        return DVM_ERR_INVALID;
    }
    char path[256];
    size_t plen = (size_t)(eq - assignment);
    if (plen >= sizeof path) {
        dvm_reasonf(err, err_len, "--set path too long");
        return DVM_ERR_INVALID;
    }
    memcpy(path, assignment, plen);
    path[plen] = 0;
    const char *value = eq + 1;

    json_t *parent = b->root;
    char *save = NULL, *tok = strtok_r(path, ".", &save), *next;
    if (!tok) {
        dvm_reasonf(err, err_len, "--set: empty path");
        return DVM_ERR_INVALID;
    }
    while ((next = strtok_r(NULL, ".", &save)) != NULL) {
        parent = json_object_get(parent, tok);
        if (!parent || !json_is_object(parent)) {
            dvm_reasonf(err, err_len, "unknown scenario field '%.*s'", (int)plen, assignment);
            return DVM_ERR_NOT_FOUND;
        }
        tok = next;
    }
    json_t *def = json_object_get(parent, tok);
    if (!def) {
        dvm_reasonf(err, err_len, "unknown scenario field '%.*s'", (int)plen, assignment);
        return DVM_ERR_NOT_FOUND;
    }
    json_error_t je;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &je);
    if (!v)
        v = json_string(value);
    if (!v)
        return DVM_ERR_NOMEM;
    if (!compatible(def, v) || json_is_object(def)) {
        json_decref(v);
        dvm_reasonf(err, err_len, "--set %.*s: value '%s' has the wrong type", (int)plen, assignment, value);
        return DVM_ERR_INVALID;
    }
    if (json_object_set_new(parent, tok, v) != 0)
        return DVM_ERR_NOMEM;
    return DVM_OK;
}

char *sim_scenario_builder_dump(const sim_scenario_builder *b)
{
    return json_dumps(b->root, JSON_COMPACT | JSON_SORT_KEYS);
}

/* --- conversion ---------------------------------------------------------- */

static dvm_err get_u64(json_t *o, const char *group, const char *key, uint64_t lo, uint64_t hi,
                       uint64_t *out, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    double d = json_number_value(v);
    if (!json_is_integer(v) && !(json_is_real(v) && d == floor(d))) {
        dvm_reasonf(err, n, "%s%s%s must be an integer", group, *group ? "." : "", key);
        return DVM_ERR_INVALID;
    }
    if (json_is_integer(v) ? (json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
                              (uint64_t)json_integer_value(v) > hi)
                           : (d < (double)lo || d > (double)hi)) {
        dvm_reasonf(err, n, "%s%s%s must be in [%llu, %llu]", group, *group ? "." : "", key,
               (unsigned long long)lo, (unsigned long long)hi);
        return DVM_ERR_INVALID;
    }
    *out = json_is_integer(v) ? (uint64_t)json_integer_value(v) : (uint64_t)d;
    return DVM_OK;
}

static dvm_err get_f(json_t *o, const char *group, const char *key, double lo, double hi, double *out,
                     char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    double d = json_number_value(v);
    if (!is_number(v) || !isfinite(d) || d < lo || d > hi) {
        dvm_reasonf(err, n, "%s%s%s must be a number in [%g, %g]", group, *group ? "." : "", key, lo, hi);
        return DVM_ERR_INVALID;
    }
    *out = d;
    return DVM_OK;
}

static dvm_err get_windows(json_t *o, const char *group, const char *key, int with_duration,
                           int with_fraction, sim_window *w, size_t *nw, char *err, size_t n)
{
    json_t *a = json_object_get(o, key);
    if (json_array_size(a) > SIM_MAX_WINDOWS) {
        dvm_reasonf(err, n, "%s.%s: at most %d entries", group, key, SIM_MAX_WINDOWS);
        return DVM_ERR_INVALID;
    }
    size_t i;
    json_t *e;
    *nw = 0;
    json_array_foreach(a, i, e) {
        char g[96];
        snprintf(g, sizeof g, "%s.%s[%zu]", group, key, i);
        if (!json_is_object(e)) {
            dvm_reasonf(err, n, "%s must be an object", g);
            return DVM_ERR_INVALID;
        }
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v) {
            if (strcmp(k, "at_s") && !(with_duration && !strcmp(k, "duration_s")) &&
                !(with_fraction && !strcmp(k, "fraction"))) {
                dvm_reasonf(err, n, "unknown scenario field '%s.%s'", g, k);
                return DVM_ERR_NOT_FOUND;
            }
        }
        sim_window win = {0, 0, 1.0};
        dvm_err r = get_f(e, g, "at_s", 0, 1e9, &win.at_s, err, n);
        if (!r && with_duration)
            r = get_f(e, g, "duration_s", 0, 1e9, &win.duration_s, err, n);
        if (!r && with_fraction)
            r = get_f(e, g, "fraction", 0, 1, &win.fraction, err, n);
        if (r)
            return r;
        w[(*nw)++] = win;
    }
    return DVM_OK;
}

#define U(grp, obj, field, lo, hi)                                                        \
    do {                                                                                  \
        dvm_err r_ = get_u64(obj, grp, #field, lo, hi, &out->field, err, err_len);        \
        if (r_)                                                                           \
            return r_;                                                                    \
    } while (0)
#define UG(grp, obj, sub, field, lo, hi)                                                  \
    do {                                                                                  \
        dvm_err r_ = get_u64(obj, grp, #field, lo, hi, &out->sub.field, err, err_len);    \
        if (r_)                                                                           \
            return r_;                                                                    \
    } while (0)
#define FG(grp, obj, sub, field, lo, hi)                                                  \
    do {                                                                                  \
        dvm_err r_ = get_f(obj, grp, #field, lo, hi, &out->sub.field, err, err_len);      \
        if (r_)                                                                           \
            return r_;                                                                    \
    } while (0)

dvm_err sim_scenario_build(const sim_scenario_builder *b, sim_scenario *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    json_t *r = b->root;
    const uint64_t BIG = 9007199254740991ULL;
    U("", r, seed, 0, BIG);
    double dur;
    if (get_f(r, "", "duration_s", 0.001, 1e7, &dur, err, err_len))
        return DVM_ERR_INVALID;
    out->duration_s = dur;
    U("", r, jobs, 0, 100000000);
    U("", r, kind, 0, 65535);

    json_t *p = json_object_get(r, "providers");
    UG("providers", p, providers, count, 1, 1000000);
    UG("providers", p, providers, max_jobs, 1, 1000000);
    UG("providers", p, providers, sats_per_chunk_min, 1, 1000000);
    UG("providers", p, providers, sats_per_chunk_max, 1, 1000000);
    UG("providers", p, providers, chunks_per_payment, 1, 1000000);
    UG("providers", p, providers, payment_timeout_ms, 1, 86400000);
    UG("providers", p, providers, chunks_min, 1, 10000000);
    UG("providers", p, providers, chunks_max, 1, 10000000);
    UG("providers", p, providers, chunk_bytes, 0, 65536);
    FG("providers", p, providers, chunk_rate_hz, 0.001, 1e6);
    UG("providers", p, providers, max_unclaimed_sats, 1, BIG);
    FG("providers", p, providers, take_and_stop, 0, 1);
    FG("providers", p, providers, early_ask, 0, 1);
    FG("providers", p, providers, stall, 0, 1);
    if (out->providers.sats_per_chunk_min > out->providers.sats_per_chunk_max) {
        dvm_reasonf(err, err_len, "providers.sats_per_chunk_min > providers.sats_per_chunk_max");
        return DVM_ERR_INVALID;
    }
    if (out->providers.chunks_min > out->providers.chunks_max) {
        dvm_reasonf(err, err_len, "providers.chunks_min > providers.chunks_max");
        return DVM_ERR_INVALID;
    }
    if (out->providers.take_and_stop + out->providers.early_ask + out->providers.stall > 1.0 + 1e-9) {
        dvm_reasonf(err, err_len, "provider adversary fractions add up to more than 1");
        return DVM_ERR_INVALID;
    }

    json_t *c = json_object_get(r, "customers");
    UG("customers", c, customers, count, 1, 10000000);
    FG("customers", c, customers, arrival_rate_hz, 0.000001, 1e7);
    UG("customers", c, customers, budget_min, 1, BIG);
    UG("customers", c, customers, budget_max, 1, BIG);
    UG("customers", c, customers, max_sats_per_chunk, 0, BIG);
    UG("customers", c, customers, prepay_window, 0, 1000);
    UG("customers", c, customers, choice_sample, 1, 1000000);
    UG("customers", c, customers, timeout_ms, 1, 86400000);
    UG("customers", c, customers, retries, 0, 100);
    FG("customers", c, customers, never_pay, 0, 1);
    FG("customers", c, customers, double_spend, 0, 1);
    FG("customers", c, customers, forge, 0, 1);
    FG("customers", c, customers, untrusted_mint, 0, 1);
    FG("customers", c, customers, replay, 0, 1);
    if (out->customers.budget_min > out->customers.budget_max) {
        dvm_reasonf(err, err_len, "customers.budget_min > customers.budget_max");
        return DVM_ERR_INVALID;
    }
    {
        const struct sim_scenario *s = out;
        double sum = s->customers.never_pay + s->customers.double_spend + s->customers.forge +
                     s->customers.untrusted_mint + s->customers.replay;
        if (sum > 1.0 + 1e-9) {
            dvm_reasonf(err, err_len, "customer adversary fractions add up to more than 1");
            return DVM_ERR_INVALID;
        }
    }
    const char *choice = json_string_value(json_object_get(c, "choice"));
    if (!strcmp(choice, "random"))
        out->customers.choice = SIM_CHOICE_RANDOM;
    else if (!strcmp(choice, "cheapest"))
        out->customers.choice = SIM_CHOICE_CHEAPEST;
    else if (!strcmp(choice, "least_loaded"))
        out->customers.choice = SIM_CHOICE_LEAST_LOADED;
    else {
        dvm_reasonf(err, err_len, "customers.choice must be random, cheapest or least_loaded");
        return DVM_ERR_INVALID;
    }

    json_t *nw = json_object_get(r, "network");
    const char *lat = json_string_value(json_object_get(nw, "latency"));
    if (!strcmp(lat, "fixed"))
        out->network.latency = SIM_LAT_FIXED;
    else if (!strcmp(lat, "uniform"))
        out->network.latency = SIM_LAT_UNIFORM;
    else if (!strcmp(lat, "lognormal"))
        out->network.latency = SIM_LAT_LOGNORMAL;
    else {
        dvm_reasonf(err, err_len, "network.latency must be fixed, uniform or lognormal");
        return DVM_ERR_INVALID;
    }
    FG("network", nw, network, latency_ms, 0, 600000);
    FG("network", nw, network, latency_max_ms, 0, 600000);
    FG("network", nw, network, latency_sigma, 0, 5);
    FG("network", nw, network, jitter_ms, 0, 600000);
    FG("network", nw, network, loss, 0, 0.99);
    FG("network", nw, network, rto_ms, 0, 600000);
    FG("network", nw, network, bandwidth_kbps, 0, 1e9);
    UG("network", nw, network, connect_rtts, 0, 10);
    if (out->network.latency == SIM_LAT_UNIFORM && out->network.latency_max_ms < out->network.latency_ms) {
        dvm_reasonf(err, err_len, "network.latency_max_ms < network.latency_ms");
        return DVM_ERR_INVALID;
    }
    dvm_err e = get_windows(nw, "network", "partitions", 1, 1, out->network.partitions,
                            &out->network.n_partitions, err, err_len);
    if (!e)
        e = get_windows(nw, "network", "disconnects", 0, 1, out->network.disconnects,
                        &out->network.n_disconnects, err, err_len);
    if (e)
        return e;

    json_t *m = json_object_get(r, "mint");
    FG("mint", m, mint, latency_ms, 0, 600000);
    UG("mint", m, mint, input_fee_ppk, 0, 999);
    return get_windows(m, "mint", "outages", 1, 0, out->mint.outages, &out->mint.n_outages, err, err_len);
}

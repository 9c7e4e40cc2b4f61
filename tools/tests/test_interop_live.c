/* Interop: a customer built like the reference one, with the reference's
 * libraries (node ci/interop/ref_customer.mjs: @hyperswarm/secret-stream,
 * @cashu/cashu-ts), buys a job from our `dvm agent`, paying with cashu-ts
 * tokens from our `dvm mint` — without DLEQ (cashu-ts' default: the agent
 * swaps each token at the mint before crediting it) and with DLEQ (checked
 * offline). The agent claims what it was paid. */
#include "live_proc.h"
#include "spawn_run.h"

#include <sys/stat.h>

#include "live/processor.h"

#define NODE_MODULE "ci/interop/node_modules/@cashu/cashu-ts/package.json"

static char dir[128];

static void setup(void)
{
    struct stat st;
    cr_assert(stat(NODE_MODULE, &st) == 0, "%s is missing: run ci/setup (or `cd ci/interop && npm ci`)", NODE_MODULE);
    snprintf(dir, sizeof dir, "/tmp/dvm-iop-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    lp_kill_all();
    if (dir[0] && !spawn_rm_rf(dir))
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(interop_live, .init = setup, .fini = teardown, .timeout = 120);

static void run_reference_customer(const char *dleq)
{
    char url[256], addr[128];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=25");
    char host[64], port[16];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(addr, ':') - addr), addr);
    snprintf(port, sizeof port, "%s", strrchr(addr, ':') + 1);
    const char *prompt = "Explain quantum computing";
    const char *args[] = {"node", "ci/interop/ref_customer.mjs", host, port, url, "50", prompt, dleq, NULL};
    lp *c = lp_spawn("ref_customer", args, true);
    cr_assert_eq(lp_wait_exit(c, 60000), 0, "node: %s\n%s\nagent: %s", c->out, c->errlog, agent->errlog);
    json_t *o = json_loads(c->out, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(o, "%s", c->out);
    cr_assert(json_is_null(json_object_get(o, "error")), "%s\nagent: %s", c->out, agent->errlog);
    char want[4096];
    dvm_builtin_text(prompt, strlen(prompt), 25, want, sizeof want);
    cr_assert_str_eq(json_string_value(json_object_get(o, "output")), want);
    cr_assert_str_eq(json_string_value(json_object_get(o, "result")), want);
    cr_assert_eq(json_integer_value(json_object_get(o, "chunks")), 25);
    cr_assert_eq(json_integer_value(json_object_get(o, "paid")), 30);
    cr_assert_eq(json_integer_value(json_object_get(o, "total_sats")), 30);
    json_decref(o);
    uint64_t end = lp_now_ms() + 15000, claimed_or_swapped = 0;
    json_t *e;
    /* without DLEQ every token was swapped on receipt ("claimed" in the
     * payment events); with DLEQ they are claimed when the job ends */
    while (claimed_or_swapped < 30 && lp_now_ms() < end && (e = lp_wait_event(agent, "payment", 500))) {
        const char *stored = json_string_value(json_object_get(e, "stored"));
        cr_assert_str_eq(stored, strcmp(dleq, "dleq") == 0 ? "incoming" : "claimed", "payment path");
        claimed_or_swapped += (uint64_t)json_integer_value(json_object_get(e, "amount"));
        json_decref(e);
    }
    cr_assert_eq(claimed_or_swapped, 30, "%s", agent->errlog);
    if (strcmp(dleq, "dleq") == 0) {
        e = lp_wait_event(agent, "claimed", 15000);
        cr_assert_not_null(e, "%s", agent->errlog);
        cr_assert_eq(json_integer_value(json_object_get(e, "sats")), 30);
        json_decref(e);
    }
}

Test(interop_live, reference_customer_tokens_without_dleq) { run_reference_customer("nodleq"); }

Test(interop_live, reference_customer_tokens_with_dleq) { run_reference_customer("dleq"); }

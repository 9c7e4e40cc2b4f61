/* dvm customer: buy one streamed job (tools/live/customer_live.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm/cli.h"
#include "live/customer_live.h"
#include "live/swarm.h"

#define MAX_PROMPT (1u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm customer --peer HOST:PORT[@PUBKEY] [OPTIONS] PROMPT|-\n"
            "\n"
            "Send PROMPT (or stdin with '-') as a job to the provider, pay it per\n"
            "chunk with Cashu micro-tokens from the wallet (minting the shortfall\n"
            "of the budget at the mint), stream the text to stdout as it arrives,\n"
            "status to stderr. Unspent proofs stay in the wallet.\n"
            "\n"
            "options (flag [$ENV, default]):\n");
    dvm_cfg_usage(out, dvm_customer_opts, dvm_customer_nopts);
    fprintf(out,
            "\n"
            "--json prints one object at the end instead of the text:\n"
            "  {\"job_id\",\"provider\",\"output\",\"chunks\",\"sats_paid\",\"total_sats\",\"ms\"}\n"
            "\n"
            "exit codes:\n"
            "  0  done (result received; also when the budget ran out first)\n"
            "  1  local failure (wallet file, out of memory)\n"
            "  2  usage error\n"
            "  3  no provider reachable\n"
            "  4  price too high (or bad offer, or budget below one payment)\n"
            "  5  payment failed (funding at the mint, splitting tokens)\n"
            "  6  provider error (error message, protocol violation, hung up mid-job)\n"
            "  7  timeout (provider silent)\n");
}

int dvm_cmd_customer(int argc, char **argv)
{
    if (dvm_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    dvm_customer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[300];
    const char *pos[1];
    size_t np = 0;
    if (dvm_cfg_parse(dvm_customer_opts, dvm_customer_nopts, &cfg, argc, argv, NULL, pos, 1, &np, err, sizeof err) !=
        0) {
        fprintf(stderr, "dvm customer: %s\n", err);
        return 2;
    }
    if (np != 1) {
        fprintf(stderr, "dvm customer: expected one PROMPT (or '-' for stdin); see 'dvm customer --help'\n");
        return 2;
    }
    if (!cfg.peer) {
        fprintf(stderr, "dvm customer: --peer HOST:PORT is required (no swarm lookup yet)\n");
        return 2;
    }
    dvm_peer_addr pa[DVM_SWARM_MAX_PEERS];
    size_t npa;
    if (dvm_peer_addr_parse_list(cfg.peer, pa, DVM_SWARM_MAX_PEERS, &npa, err, sizeof err) != DVM_OK) {
        fprintf(stderr, "dvm customer: --peer: %s\n", err); /* before funding anything */
        return 2;
    }
    for (size_t i = 0; cfg.insecure_plaintext && i < npa; i++)
        if (pa[i].pinned) {
            fprintf(stderr, "dvm customer: --insecure-plaintext cannot check a pinned key (@PUBKEY): no handshake\n");
            return 2;
        }
    char *input = NULL;
    size_t len = 0;
    if (strcmp(pos[0], "-") == 0) {
        input = malloc(MAX_PROMPT + 1);
        if (!input)
            return 1;
        len = fread(input, 1, MAX_PROMPT + 1, stdin);
        if (len > MAX_PROMPT) {
            fprintf(stderr, "dvm customer: prompt over %u bytes\n", MAX_PROMPT);
            free(input);
            return 2;
        }
    } else {
        input = strdup(pos[0]);
        if (!input)
            return 1;
        len = strlen(input);
    }
    dvm_log log = {stderr, cfg.log_json, "customer"};
    int rc = dvm_customer_live_run(&cfg, input, len, stdout, &log);
    free(input);
    return rc;
}

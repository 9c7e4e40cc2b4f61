/* dvm agent: serve jobs of one kind, paid per chunk (tools/live/agent_live.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm/cli.h"
#include "live/agent_live.h"
#include "live/swarm.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm agent [OPTIONS]\n"
            "\n"
            "Serve DVM jobs of one kind over encrypted P2P connections, streaming\n"
            "the processor's output chunk by chunk, paid per chunk in Cashu ecash\n"
            "(seeds/streaming-guide-p2p-cashu.md). Tokens are committed to the\n"
            "wallet before payment_ack and claimed at the mint when each job ends;\n"
            "claims that fail are retried (also at the next start).\n"
            "SIGINT/SIGTERM: stop taking jobs, end running jobs with a result,\n"
            "claim, exit 0. Logs: one line per job event on stderr.\n"
            "\n"
            "options (flag [$ENV, default]):\n");
    dvm_cfg_usage(out, dvm_agent_opts, dvm_agent_nopts);
}

int dvm_cmd_agent(int argc, char **argv)
{
    if (dvm_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    dvm_agent_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[300];
    size_t np;
    if (dvm_cfg_parse(dvm_agent_opts, dvm_agent_nopts, &cfg, argc, argv, NULL, NULL, 0, &np, err, sizeof err) != 0) {
        fprintf(stderr, "dvm agent: %s\n", err);
        return 2;
    }
    if (cfg.sync && strcmp(cfg.sync, "full") != 0 && strcmp(cfg.sync, "normal") != 0) {
        fprintf(stderr, "dvm agent: --sync: expected full or normal, got '%s'\n", cfg.sync);
        return 2;
    }
    if (cfg.sub_kind && !cfg.sub_peer) {
        fprintf(stderr, "dvm agent: --sub-kind needs --sub-peer HOST:PORT (no swarm lookup yet)\n");
        return 2;
    }
    /* Address syntax is a usage error (exit 2), checked before anything
     * opens a file or a socket. */
    dvm_peer_addr pa[DVM_SWARM_MAX_PEERS];
    size_t npa;
    if (cfg.listen && dvm_peer_addr_parse(cfg.listen, true, &pa[0], err, sizeof err) != DVM_OK) {
        fprintf(stderr, "dvm agent: --listen: %s\n", err);
        return 2;
    }
    if (cfg.sub_peer && dvm_peer_addr_parse_list(cfg.sub_peer, pa, DVM_SWARM_MAX_PEERS, &npa, err, sizeof err) != DVM_OK) {
        fprintf(stderr, "dvm agent: --sub-peer: %s\n", err);
        return 2;
    }
    dvm_log log = {stderr, cfg.log_json, "agent"};
    return dvm_agent_live_run(&cfg, &log);
}

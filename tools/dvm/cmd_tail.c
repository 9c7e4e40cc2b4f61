/* dvm tail PATH: print what an agent publishes on its --stream-socket. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "dvm/cli.h"
#include "live/stream_socket.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm tail [--text] [--backoff-max-ms MS] PATH\n"
            "\n"
            "Connect to the Unix socket an agent publishes on (dvm agent\n"
            "--stream-socket=PATH) and print every chunk it streams, one NDJSON\n"
            "line each: {\"agent_pubkey\",\"conversation_id\",\"data\"}. Waits for\n"
            "the socket to appear and reconnects when the agent restarts (delay\n"
            "100 ms doubling up to --backoff-max-ms, default 2000). Status goes\n"
            "to stderr. Runs until SIGINT or SIGTERM, then exits 0.\n"
            "\n"
            "  --text            print only the chunk text, as it arrives\n"
            "  --backoff-max-ms  reconnect delay cap in ms (100..60000)\n");
}

int dvm_cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"text", no_argument, NULL, 't'},
        {"backoff-max-ms", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dvm_tail_opts o = {0};
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': o.text_only = true; break;
        case 'b': {
            uint64_t v;
            if (!dvm_parse_u64(optarg, 60000, &v) || v < 100) {
                fprintf(stderr, "dvm tail: --backoff-max-ms must be 100..60000, got '%s'\n", optarg);
                return 2;
            }
            o.backoff_max_ms = (uint32_t)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("tail", argc, argv);
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "dvm tail: expected one PATH; see 'dvm tail --help'\n");
        return 2;
    }
    return dvm_stream_tail_run(argv[optind], &o, stdout, stderr);
}

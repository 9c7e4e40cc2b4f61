/* dvm mint: a Cashu mint over HTTP with a fake Lightning backend. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dvm/cli.h"
#include "mint/mint_app.h"
#include "mint/mint_http.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm mint --listen HOST:PORT --db PATH [--seed-file PATH]\n"
            "                [--input-fee-ppk N] [--max-inputs N] [--max-outputs N]\n"
            "                [--max-body BYTES] [--threads N] [--quiet]\n"
            "\n"
            "Run a Cashu mint over HTTP (NUT-01..07, 09, 12) with a fake Lightning\n"
            "backend: mint quotes are paid at once and melts succeed at once, so a\n"
            "local swarm has a mint without the internet. Never use it for real money.\n"
            "\n"
            "  --listen HOST:PORT   address to serve on, with an explicit host\n"
            "                       (127.0.0.1:3338, [::1]:3338); port 0 picks a free\n"
            "                       port. Prints 'listening on http://HOST:PORT'.\n"
            "  --db PATH            SQLite database (created if absent): keyset seed,\n"
            "                       quotes, spent proofs. WAL, synchronous=FULL.\n"
            "  --seed-file PATH     32-byte keyset seed (raw, or 64 hex chars); must\n"
            "                       match the database's seed if it has one. Default:\n"
            "                       the stored seed, or a fresh random one.\n"
            "  --input-fee-ppk N    NUT-02 fee per input, parts per thousand (default 0)\n"
            "  --max-inputs N       inputs per request (default 1000)\n"
            "  --max-outputs N      outputs per request (default 1000)\n"
            "  --max-body BYTES     request body limit (default 1048576)\n"
            "  --threads N          HTTP worker threads (default 4)\n"
            "  --quiet              no per-request log lines\n"
            "\n"
            "Logs one line per request on stderr: METHOD PATH STATUS MS.\n"
            "SIGINT or SIGTERM stops it cleanly (exit 0).\n");
}

static int read_seed_file(const char *path, uint8_t seed[32])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "dvm mint: cannot open seed file %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char buf[130];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 32) {
        memcpy(seed, buf, 32);
        return 0;
    }
    size_t bin_len = 0;
    if (n == 64 && sodium_hex2bin(seed, 32, (const char *)buf, n, NULL, &bin_len, NULL) == 0 &&
        bin_len == 32)
        return 0;
    fprintf(stderr, "dvm mint: seed file %s must hold 32 raw bytes or 64 hex characters\n", path);
    return -1;
}

int dvm_cmd_mint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},
        {"seed-file", required_argument, NULL, 's'},
        {"input-fee-ppk", required_argument, NULL, 'f'},
        {"max-inputs", required_argument, NULL, 'I'},
        {"max-outputs", required_argument, NULL, 'O'},
        {"max-body", required_argument, NULL, 'B'},
        {"threads", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_s = NULL, *db = NULL, *seed_file = NULL;
    uint64_t fee = 0, max_in = 0, max_out = 0, max_body = 1u << 20, threads = 4;
    bool quiet = false;
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = NULL;
        uint64_t *dst = NULL, max = 0;
        switch (c) {
        case 'l': listen_s = optarg; break;
        case 'd': db = optarg; break;
        case 's': seed_file = optarg; break;
        case 'f': name = "--input-fee-ppk", dst = &fee, max = 100000; break;
        case 'I': name = "--max-inputs", dst = &max_in, max = 100000; break;
        case 'O': name = "--max-outputs", dst = &max_out, max = 100000; break;
        case 'B': name = "--max-body", dst = &max_body, max = 64u << 20; break;
        case 'T': name = "--threads", dst = &threads, max = 64; break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("mint", argc, argv);
        }
        if (dst && !dvm_parse_u64(optarg, max, dst)) {
            fprintf(stderr, "dvm mint: %s must be an integer in 0..%llu, got '%s'\n", name,
                    (unsigned long long)max, optarg);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "dvm mint: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!listen_s || !db) {
        fprintf(stderr, "dvm mint: --listen HOST:PORT and --db PATH are required\n");
        return 2;
    }
    char host[256];
    uint16_t port;
    if (dvm_http_parse_listen(listen_s, host, sizeof host, &port)) {
        fprintf(stderr, "dvm mint: --listen must be HOST:PORT with an explicit host, got '%s'\n",
                listen_s);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "dvm mint: libsodium failed to initialise\n");
        return 1;
    }
    uint8_t seed[32];
    if (seed_file && read_seed_file(seed_file, seed))
        return 1;

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait below receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    dvm_mint_app_config cfg = {0};
    cfg.db_path = db;
    cfg.seed = seed_file ? seed : NULL;
    cfg.input_fee_ppk = fee;
    cfg.max_inputs = (size_t)max_in;
    cfg.max_outputs = (size_t)max_out;
    char err[512];
    dvm_mint_app *app = NULL;
    dvm_err e = dvm_mint_app_open(&cfg, &app, err, sizeof err);
    sodium_memzero(seed, sizeof seed);
    if (e) {
        fprintf(stderr, "dvm mint: %s\n", err);
        return 1;
    }
    size_t n_routes;
    const dvm_http_route *routes = dvm_mint_app_routes(&n_routes);
    dvm_http_config hc = {0};
    hc.host = host;
    hc.port = port;
    hc.max_body = (size_t)max_body;
    hc.threads = (unsigned)(threads ? threads : 1);
    hc.log = !quiet;
    dvm_http_server *srv = NULL;
    e = dvm_http_server_start(&hc, routes, n_routes, app, &srv, err, sizeof err);
    if (e) {
        fprintf(stderr, "dvm mint: %s\n", err);
        dvm_mint_app_close(app);
        return 1;
    }
    bool v6 = strchr(host, ':') != NULL;
    printf("listening on http://%s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "",
           dvm_http_server_port(srv));
    printf("keyset %s (input_fee_ppk %llu)\n", dvm_mint_app_active_keyset(app),
           (unsigned long long)fee);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "dvm mint: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    dvm_http_server_stop(srv);
    dvm_mint_app_close(app);
    return 0;
}

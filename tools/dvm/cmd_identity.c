/* dvm identity [--identity PATH]: print this node's public key. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>

#include "dvm/cli.h"
#include "live/identity.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm identity [--identity PATH]\n"
            "\n"
            "Print the node's Ed25519 public key (64 hex characters): its Noise\n"
            "static key on every SecretStream, the key peers pin with\n"
            "--peer HOST:PORT@PUBKEY. The key pair lives in PATH (default\n"
            "$XDG_DATA_HOME/dvm/identity, else ~/.local/share/dvm/identity) and\n"
            "is created (mode 0600) when missing; a note goes to stderr then.\n");
}

int dvm_cmd_identity(int argc, char **argv)
{
    static const struct option opts[] = {
        {"identity", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("identity", argc, argv);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "dvm identity: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "dvm identity: libsodium failed to initialise\n");
        return 1;
    }
    dvm_noise_keypair kp;
    bool created = false;
    char why[512];
    char def[4096];
    if (!path && dvm_identity_default_path(def, sizeof def) == DVM_OK)
        path = def;
    if (dvm_identity_load_or_create(path, &kp, &created, why, sizeof why) != DVM_OK) {
        fprintf(stderr, "dvm identity: %s\n", why);
        return 1;
    }
    char hex[65];
    dvm_identity_hex(kp.public_key, hex);
    if (created)
        fprintf(stderr, "dvm identity: created %s\n", path);
    printf("%s\n", hex);
    sodium_memzero(&kp, sizeof kp);
    return 0;
}

/* dvm topic --kind N: print the Hyperswarm topic of DVM kind N. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "dvm/cli.h"
#include "wire/topic.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm topic --kind N\n"
            "\n"
            "Print the Hyperswarm topic of DVM kind N: 64 hex characters of\n"
            "SHA-256(\"2020117-dvm-kind-N\"). Providers join it as servers,\n"
            "customers as clients. N defaults to $DVM_KIND, then 5100.\n");
}

int dvm_cmd_topic(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *kind_s = getenv("DVM_KIND");
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': kind_s = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("topic", argc, argv);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "dvm topic: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    uint64_t kind = 5100;
    if (kind_s && !dvm_parse_u64(kind_s, UINT32_MAX, &kind)) {
        fprintf(stderr, "dvm topic: --kind must be a non-negative integer, got '%s'\n", kind_s);
        return 2;
    }
    char hex[2 * DVM_TOPIC_BYTES + 1];
    dvm_topic_hex(kind, hex);
    printf("%s\n", hex);
    return 0;
}

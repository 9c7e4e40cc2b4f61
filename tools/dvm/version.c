#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm/cli.h"

const char *dvm_version(void) { return DVM_VERSION; }

bool dvm_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = (uint64_t)v;
    return true;
}

bool dvm_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int dvm_bad_option(const char *cmd, int argc, char **argv)
{
    char shortopt[3] = "-?";
    const char *word = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : NULL;
    if (!word || strncmp(word, "--", 2) != 0) {
        if (optopt > ' ' && optopt < 127) { /* a short option, maybe inside a cluster */
            shortopt[1] = (char)optopt;
            word = shortopt;
        } else if (!word) {
            word = "?";
        }
    }
    fprintf(stderr, "dvm %s: bad option '%s' (unknown, or missing its value); see 'dvm %s --help'\n", cmd, word,
            cmd);
    return 2;
}

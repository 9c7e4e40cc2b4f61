/* dvm — peer-to-peer streaming compute paid per chunk with Cashu ecash.
 * Dispatches to the subcommands listed in tools/dvm/commands.def. */
#include <stdio.h>
#include <string.h>

#include "dvm/cli.h"

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
#define DVM_COMMAND(name, summary) {#name, summary, dvm_cmd_##name},
#include "dvm/commands.def"
#undef DVM_COMMAND
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm [--version] [--help] COMMAND [ARGS]\n"
            "\n"
            "Peer-to-peer streaming compute paid per chunk with Cashu ecash\n"
            "(the 2020117 DVM protocol over Hyperswarm).\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'dvm COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("dvm %s\n", dvm_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dvm: '%s' is not a dvm command; see 'dvm --help'\n", name);
    return 2;
}

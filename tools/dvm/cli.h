/* dvmstream — the `dvm` command line: one binary, git-style subcommands.
 *
 * Each subcommand is a function `int dvm_cmd_NAME(int argc, char **argv)`
 * in tools/dvm/cmd_NAME.c, listed once in tools/dvm/commands.def. argv[0]
 * is the subcommand name; the return value is the process exit code. Every
 * subcommand answers --help (usage on stdout, exit 0); a usage error prints
 * one line on stderr and returns 2. */
#ifndef DVM_CLI_H
#define DVM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#define DVM_COMMAND(name, summary) int dvm_cmd_##name(int argc, char **argv);
#include "dvm/commands.def"
#undef DVM_COMMAND

/* Project version string ("0.1.0"). */
const char *dvm_version(void);

/* Parse a decimal unsigned integer in [0, max]; false (and *out untouched)
 * on empty input, junk, sign or overflow. */
bool dvm_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* True if any of argv[1..argc) is "--help" or "-h". */
bool dvm_wants_help(int argc, char **argv);

/* The usage error for an option getopt_long rejected (unknown, or missing
 * its value): call with opterr = 0 right after getopt_long returned '?'.
 * Prints one line on stderr, "dvm CMD: bad option 'WORD' ...; see 'dvm CMD
 * --help'", and returns 2 (the exit code of a usage error). */
int dvm_bad_option(const char *cmd, int argc, char **argv);

#endif

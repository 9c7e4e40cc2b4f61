/* dvm wallet: a Cashu wallet over HTTP with an SQLite proof store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"
#include "common/buf.h"
#include "dvm/cli.h"
#include "live/wallet_client.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm wallet [--mint URL] --db PATH [--timeout MS] COMMAND [ARGS]\n"
            "\n"
            "A Cashu wallet for one mint, proofs kept in an SQLite database.\n"
            "\n"
            "commands:\n"
            "  mint AMOUNT          mint AMOUNT sats (quote, wait until paid, mint)\n"
            "  balance              print the spendable balance in sats, then\n"
            "                       reserved/pending/incoming amounts on stderr\n"
            "  send AMOUNT          split off exactly AMOUNT sats and print a token\n"
            "                       (cashuB V4; --v3 for cashuA)\n"
            "  receive TOKEN        claim a token (swap it at the mint); '-' reads\n"
            "                       it from stdin. Fails with 11001 if already spent.\n"
            "  check TOKEN          print each proof's state at the mint:\n"
            "                       AMOUNT UNSPENT|PENDING|SPENT, one line each\n"
            "  claim                claim every token stored as incoming\n"
            "  recover              finish operations interrupted by a crash and\n"
            "                       return reserved (split but unsent) proofs\n"
            "  melt INVOICE         pay a bolt11 invoice (the fake backend pays at once)\n"
            "\n"
            "  --mint URL           the mint (default: $CASHU_MINT_URL; the flag wins;\n"
            "                       receive/check without either use the token's mint)\n"
            "  --db PATH            wallet database (created if absent)\n"
            "  --timeout MS         per-request timeout (default 30000)\n"
            "  --v3                 send: print a V3 cashuA token\n"
            "\n"
            "Exit status: 0 ok, 1 failure (the mint's error is printed with its\n"
            "NUT code, e.g. 'error 11001: Proofs already spent'), 2 usage,\n"
            "3 mint unreachable (nothing lost; run again or 'recover').\n");
}

static int fail(dvm_wallet_client *w, dvm_err e, const char *what)
{
    long code = dvm_wallet_client_last_code(w);
    if (code)
        fprintf(stderr, "dvm wallet: %s failed: error %ld: %s\n", what, code,
                dvm_wallet_client_last_error(w));
    else
        fprintf(stderr, "dvm wallet: %s failed: %s\n", what, dvm_wallet_client_last_error(w));
    return e == DVM_ERR_AGAIN ? 3 : 1;
}

static char *read_stdin_token(void)
{
    size_t cap = DVM_TOKEN_MAX_BYTES + 2, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t r;
    while (n < cap - 1 && (r = fread(buf + n, 1, cap - 1 - n, stdin)) > 0)
        n += r;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return buf;
}

/* Decode TOKEN (or '-' = stdin); prints the reason and returns false on a
 * bad token. */
static bool load_token(const char *arg, dvm_token *t)
{
    char *owned = NULL;
    const char *s = arg;
    if (strcmp(arg, "-") == 0) {
        owned = read_stdin_token();
        if (!owned) {
            fprintf(stderr, "dvm wallet: cannot read the token from stdin\n");
            return false;
        }
        s = owned;
    }
    char reason[200];
    dvm_err e = dvm_token_decode(s, strlen(s), t, reason, sizeof reason);
    free(owned);
    if (e) {
        fprintf(stderr, "dvm wallet: bad token: %s\n", reason);
        return false;
    }
    return true;
}

static bool parse_amount(const char *s, uint64_t *v)
{
    if (!dvm_parse_u64(s, 9007199254740991ULL, v) || *v == 0) {
        fprintf(stderr, "dvm wallet: AMOUNT must be a positive integer (sats), got '%s'\n", s);
        return false;
    }
    return true;
}

int dvm_cmd_wallet(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mint", required_argument, NULL, 'm'},
        {"db", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'},
        {"v3", no_argument, NULL, '3'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *mint = getenv("CASHU_MINT_URL"), *db = NULL;
    uint64_t timeout = 30000;
    int version = 4;
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    /* '+': stop at the first non-option (the command); options may also
     * follow the command, see the second pass below. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': mint = optarg; break;
        case 'd': db = optarg; break;
        case 't':
            if (!dvm_parse_u64(optarg, 3600000, &timeout) || timeout == 0) {
                fprintf(stderr, "dvm wallet: --timeout must be 1..3600000 ms\n");
                return 2;
            }
            break;
        case '3': version = 3; break;
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("wallet", argc, argv);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dvm wallet: missing COMMAND; see 'dvm wallet --help'\n");
        return 2;
    }
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    /* Allow "--v3" after the command (dvm wallet send 5 --v3). */
    int kept = 0;
    for (int i = 0; i < nargs; i++) {
        if (strcmp(args[i], "--v3") == 0)
            version = 3;
        else if (strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else
            args[kept++] = args[i];
    }
    nargs = kept;
    struct {
        const char *name;
        int nargs;
    } const cmds[] = {{"mint", 1},  {"balance", 0}, {"send", 1},    {"receive", 1},
                      {"check", 1}, {"claim", 0},   {"recover", 0}, {"melt", 1}};
    int want = -1;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            want = cmds[i].nargs;
    if (want < 0) {
        fprintf(stderr, "dvm wallet: unknown command '%s'; see 'dvm wallet --help'\n", cmd);
        return 2;
    }
    if (nargs != want) {
        fprintf(stderr, "dvm wallet %s: expected %d argument%s, got %d\n", cmd, want,
                want == 1 ? "" : "s", nargs);
        return 2;
    }
    /* receive/check: decode the token first; without --mint or
     * CASHU_MINT_URL, the token's own mint is used. */
    dvm_token tok;
    memset(&tok, 0, sizeof tok);
    if (strcmp(cmd, "receive") == 0 || strcmp(cmd, "check") == 0) {
        if (!load_token(args[0], &tok))
            return 1;
        if (!mint || !*mint)
            mint = tok.mint;
    }
    if (!mint || !*mint) {
        fprintf(stderr, "dvm wallet: no mint: pass --mint URL or set CASHU_MINT_URL\n");
        return 2;
    }
    if (!db) {
        fprintf(stderr, "dvm wallet: --db PATH is required\n");
        dvm_token_free(&tok);
        return 2;
    }
    char err[512];
    dvm_wallet_client *w = NULL;
    if (dvm_wallet_client_open(mint, db, (long)timeout, &w, err, sizeof err)) {
        fprintf(stderr, "dvm wallet: %s\n", err);
        dvm_token_free(&tok);
        return 1;
    }
    int rc = 0;
    dvm_err e;
    if (strcmp(cmd, "mint") == 0) {
        uint64_t amount, minted = 0;
        if (!parse_amount(args[0], &amount)) {
            rc = 2;
            goto out;
        }
        if ((e = dvm_wallet_client_mint(w, amount, timeout, &minted))) {
            rc = fail(w, e, "mint");
            goto out;
        }
        dvm_wallet_balance b;
        dvm_wallet_client_balance(w, &b);
        printf("minted %llu sat (balance %llu sat)\n", (unsigned long long)minted,
               (unsigned long long)b.unspent);
    } else if (strcmp(cmd, "balance") == 0) {
        dvm_wallet_balance b;
        if ((e = dvm_wallet_client_balance(w, &b))) {
            rc = fail(w, e, "balance");
            goto out;
        }
        printf("%llu\n", (unsigned long long)b.unspent);
        fprintf(stderr, "balance %llu sat (reserved %llu, pending %llu, incoming %llu)\n",
                (unsigned long long)b.unspent, (unsigned long long)b.reserved,
                (unsigned long long)b.pending, (unsigned long long)b.incoming);
    } else if (strcmp(cmd, "send") == 0) {
        uint64_t amount;
        if (!parse_amount(args[0], &amount)) {
            rc = 2;
            goto out;
        }
        /* Split off a token (reserved), encode it, and only then mark it
         * sent; if encoding failed the proofs go back to the balance. */
        dvm_token *ts = NULL;
        if ((e = dvm_wallet_client_split(w, amount, 1, &ts))) {
            rc = fail(w, e, "send");
            goto out;
        }
        dvm_buf b;
        dvm_buf_init(&b, 0);
        e = dvm_token_encode(&ts[0], version, &b);
        if (e == DVM_OK && (e = dvm_wallet_client_mark_sent(w, &ts[0])) == DVM_OK) {
            fwrite(b.data, 1, b.len, stdout);
            fputc('\n', stdout);
        } else {
            fprintf(stderr, "dvm wallet: cannot encode the token: %s\n", dvm_strerror(e));
            dvm_wallet_client_release(w, &ts[0]);
            rc = 1;
        }
        dvm_buf_free(&b);
        dvm_wallet_tokens_free(ts, 1);
    } else if (strcmp(cmd, "receive") == 0) {
        uint64_t got = 0;
        e = dvm_wallet_client_receive(w, &tok, &got);
        if (e) {
            rc = fail(w, e, "receive");
            goto out;
        }
        printf("received %llu sat\n", (unsigned long long)got);
    } else if (strcmp(cmd, "check") == 0) {
        dvm_token t = tok;
        dvm_proof_state *st = calloc(t.n_proofs ? t.n_proofs : 1, sizeof *st);
        e = st ? dvm_wallet_client_check(w, t.proofs, t.n_proofs, st) : DVM_ERR_NOMEM;
        if (e) {
            rc = fail(w, e, "check");
        } else {
            for (size_t i = 0; i < t.n_proofs; i++)
                printf("%llu %s\n", (unsigned long long)t.proofs[i].amount,
                       dvm_proof_state_name(st[i]));
        }
        free(st);
    } else if (strcmp(cmd, "claim") == 0) {
        uint64_t got = 0, lost = 0;
        if ((e = dvm_wallet_client_claim_incoming(w, &got, &lost))) {
            rc = fail(w, e, "claim");
            goto out;
        }
        printf("claimed %llu sat (rejected %llu sat)\n", (unsigned long long)got,
               (unsigned long long)lost);
    } else if (strcmp(cmd, "recover") == 0) {
        size_t n = 0;
        uint64_t released = 0;
        if ((e = dvm_wallet_client_recover(w, &n))) {
            rc = fail(w, e, "recover");
            goto out;
        }
        /* Tokens split off by a `send` that died before printing them. */
        if ((e = dvm_wallet_client_release_reserved(w, &released))) {
            rc = fail(w, e, "recover");
            goto out;
        }
        printf("recovered %zu operation%s, released %llu reserved sat\n", n, n == 1 ? "" : "s",
               (unsigned long long)released);
    } else if (strcmp(cmd, "melt") == 0) {
        uint64_t paid = 0;
        if ((e = dvm_wallet_client_melt(w, args[0], &paid))) {
            rc = fail(w, e, "melt");
            goto out;
        }
        printf("paid %llu sat\n", (unsigned long long)paid);
    }
out:
    dvm_token_free(&tok);
    dvm_wallet_client_close(w);
    return rc;
}

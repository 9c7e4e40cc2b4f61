/* dvm-bench wallet — what a provider pays to commit received tokens
 * durably before payment_ack (live/wallet_client.h add_incoming): SQLite
 * WAL commits per second with synchronous FULL (one fsync per commit, the
 * default) and NORMAL (no fsync on commit), one token per commit and in
 * groups (add_incoming_many). The tokens are made up (random secrets;
 * add_incoming does not contact the mint), so this measures the store
 * alone. The database goes to a fresh directory under $TMPDIR (or /tmp),
 * or under the directory given as the argument: measure on the disk the
 * agent will use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "live/wallet_client.h"

#define MINT_URL "http://127.0.0.1:1"

static void fake_token(dvm_token *t, dvm_proof *p)
{
    memset(t, 0, sizeof *t);
    memset(p, 0, sizeof *p);
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(p->secret + 2 * i, 3, "%02x", raw[i]);
    p->secret_len = 64;
    snprintf(p->id, sizeof p->id, "00ffd48b8f5ecf80");
    p->amount = 8;
    p->C[0] = 0x02;
    randombytes_buf(p->C + 1, sizeof p->C - 1);
    t->version = 4;
    snprintf(t->mint, sizeof t->mint, "%s", MINT_URL);
    snprintf(t->unit, sizeof t->unit, "sat");
    t->has_unit = true;
    t->proofs = p;
    t->n_proofs = 1;
}

static void rm_db(const char *db)
{
    char f[600];
    unlink(db);
    snprintf(f, sizeof f, "%s-wal", db);
    unlink(f);
    snprintf(f, sizeof f, "%s-shm", db);
    unlink(f);
}

/* One run: n tokens committed in groups of `group`; returns tokens/s or
 * a negative value on failure. */
static double run_case(const char *dir, dvm_wallet_sync mode, size_t group, size_t n)
{
    char db[512], err[256];
    snprintf(db, sizeof db, "%s/wallet.db", dir);
    rm_db(db);
    dvm_wallet_client *w = NULL;
    if (dvm_wallet_client_open(MINT_URL, db, 1000, &w, err, sizeof err) ||
        dvm_wallet_client_set_sync(w, mode)) {
        fprintf(stderr, "dvm-bench wallet: %s\n", err);
        dvm_wallet_client_close(w);
        return -1;
    }
    dvm_token *ts = calloc(n, sizeof *ts);
    dvm_proof *ps = calloc(n, sizeof *ps);
    double rate = -1;
    if (!ts || !ps)
        goto done;
    for (size_t i = 0; i < n; i++)
        fake_token(&ts[i], &ps[i]);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i += group) {
        size_t k = n - i < group ? n - i : group;
        dvm_err e = group == 1 ? dvm_wallet_client_add_incoming(w, &ts[i])
                               : dvm_wallet_client_add_incoming_many(w, &ts[i], k, NULL);
        if (e) {
            fprintf(stderr, "dvm-bench wallet: commit failed: %s\n",
                    dvm_wallet_client_last_error(w));
            goto done;
        }
    }
    double dt = bench_now() - t0;
    dvm_wallet_balance b;
    if (dvm_wallet_client_balance(w, &b) || b.incoming != 8 * n) {
        fprintf(stderr, "dvm-bench wallet: expected %zu sats incoming\n", 8 * n);
        goto done;
    }
    rate = (double)n / (dt > 0 ? dt : 1e-9);
done:
    free(ts);
    free(ps);
    dvm_wallet_client_close(w);
    rm_db(db);
    return rate;
}

int bench_wallet(const bench_opts *o, int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR"); /* argv[0]: "wallet" */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/dvm-bench-wallet-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("dvm-bench wallet: mkdtemp");
        return 1;
    }
    static const struct {
        dvm_wallet_sync mode;
        const char *name;
        size_t group, n;
    } cases[] = {
        {DVM_WALLET_SYNC_FULL, "full", 1, 200},
        {DVM_WALLET_SYNC_NORMAL, "normal", 1, 2000},
        {DVM_WALLET_SYNC_FULL, "full", 10, 1000},
        {DVM_WALLET_SYNC_NORMAL, "normal", 10, 5000},
    };
    int rc = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && rc == 0; c++) {
        size_t n = (size_t)((double)cases[c].n * o->scale);
        if (n < cases[c].group * 2)
            n = cases[c].group * 2;
        double v[BENCH_MAX_RUNS];
        for (int r = 0; r < o->runs && rc == 0; r++)
            if ((v[r] = run_case(dir, cases[c].mode, cases[c].group, n)) < 0)
                rc = 1;
        if (rc)
            break;
        char extra[200];
        snprintf(extra, sizeof extra, "\"sync\":\"%s\",\"group\":%zu,\"tokens\":%zu",
                 cases[c].name, cases[c].group, n);
        bench_emit("wallet_commit", extra, "tokens_per_s", v, o->runs);
    }
    rmdir(dir);
    return rc;
}

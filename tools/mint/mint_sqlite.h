/* dvmstream — the mint's durable state in SQLite: core/cashu's mint store
 * vtable (cashu/mint.h, dvm_mint_store) over one database file.
 *
 * Tables: meta (the keyset seed), proofs_used (Y -> PENDING|SPENT, NUT-07),
 * signed_outputs (B_ -> BlindSignature with DLEQ: error 11003 and NUT-09
 * restore), mint_quotes (NUT-04), melt_quotes (NUT-05). The database runs in
 * WAL mode with synchronous=FULL, so a committed swap survives kill -9 and
 * power loss.
 *
 * Every dvm_mint_commit is ONE transaction (BEGIN IMMEDIATE: the write lock
 * is taken before the preconditions are read), so concurrent requests, and
 * even several processes on the same file, can never both spend one Y.
 * The connection is guarded by a mutex: the vtable may be called from any
 * thread.
 *
 * Errors: DVM_ERR_STATE for an SQLite failure (reason logged to stderr). */
#ifndef DVM_MINT_SQLITE_H
#define DVM_MINT_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/mint.h"
#include "common/err.h"

typedef struct dvm_mint_sqlite dvm_mint_sqlite;

/* Open (creating if needed) the database at `path`. DVM_ERR_STATE with a
 * reason in err (errlen bytes) on failure. */
dvm_err dvm_mint_sqlite_open(const char *path, dvm_mint_sqlite **out, char *err, size_t errlen);

/* Close; NULL is a no-op. */
void dvm_mint_sqlite_close(dvm_mint_sqlite *s);

/* Fill *vt with the store vtable (ctx = s) for dvm_mint_new. */
void dvm_mint_sqlite_vtable(dvm_mint_sqlite *s, dvm_mint_store *vt);

/* The 32-byte keyset seed. If the database holds one, it is returned in
 * out; else `fresh` is stored and returned. With `must_match` and a stored
 * seed different from `fresh`: DVM_ERR_EXISTS (a --seed-file must not
 * silently replace a mint's keys). */
dvm_err dvm_mint_sqlite_seed(dvm_mint_sqlite *s, const uint8_t fresh[32], bool must_match,
                             uint8_t out[32]);

/* NUT-09 restore: for each B_s[i], found[i] tells whether it was signed and
 * sigs[i] gets the stored BlindSignature (with its DLEQ). */
dvm_err dvm_mint_sqlite_restore(dvm_mint_sqlite *s, const uint8_t (*B_s)[DVM_POINT_BYTES],
                                size_t n, bool *found, dvm_blind_signature *sigs);

/* A melt interrupted between its two commits (inputs PENDING, quote
 * PENDING), found at startup. */
typedef struct dvm_pending_melt {
    char quote[DVM_QUOTE_ID_MAX + 1];
    uint8_t (*Ys)[DVM_POINT_BYTES]; /* its PENDING inputs (malloc'd) */
    size_t n_Ys;
} dvm_pending_melt;

/* Every melt quote in state PENDING with its PENDING Ys (at most 1000
 * quotes). Free with dvm_mint_sqlite_pending_melts_free. */
dvm_err dvm_mint_sqlite_pending_melts(dvm_mint_sqlite *s, dvm_pending_melt **out, size_t *n);
void dvm_mint_sqlite_pending_melts_free(dvm_pending_melt *pm, size_t n);

/* Number of Y's in state SPENT (tests, logs). */
dvm_err dvm_mint_sqlite_count_spent(dvm_mint_sqlite *s, uint64_t *n);

#endif

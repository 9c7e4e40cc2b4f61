/* dvmstream — an in-memory dvm_mint_store (cashu/mint.h) for the simulator's
 * mock mint, the tests and the fuzzers.
 *
 * Open-addressing hash tables keyed by Y (spent set, with PENDING), by B_
 * (signed outputs) and by quote id. Memory grows with use (about 48 bytes
 * per Y or B_, 200 bytes per quote) up to `max_entries` per table, past
 * which commits fail with DVM_ERR_LIMIT (a storage failure for the mint,
 * nothing changed). Single-threaded. */
#ifndef DVM_CASHU_MINT_MEMSTORE_H
#define DVM_CASHU_MINT_MEMSTORE_H

#include <stddef.h>

#include "cashu/mint.h"

typedef struct dvm_mint_memstore dvm_mint_memstore;

/* New empty store; max_entries bounds each table (0 = 1 << 24).
 * DVM_ERR_NOMEM. */
dvm_err dvm_mint_memstore_new(dvm_mint_memstore **out, size_t max_entries);
/* Release the store and everything in it (NULL is fine). */
void dvm_mint_memstore_free(dvm_mint_memstore *s);

/* Fill *vt with this store's callbacks (vt->ctx = s). */
void dvm_mint_memstore_vtable(dvm_mint_memstore *s, dvm_mint_store *vt);

/* Counters: Ys SPENT, Ys PENDING, outputs signed, quotes stored. */
typedef struct dvm_mint_memstore_stats {
    size_t spent;
    size_t pending;
    size_t outputs;
    size_t quotes;
} dvm_mint_memstore_stats;
/* Copy the store's current counters into *out (both non-NULL); no errors,
 * no allocation. */
void dvm_mint_memstore_stats_get(const dvm_mint_memstore *s, dvm_mint_memstore_stats *out);

/* Test/simulation hook: let the next `skip` commits through, then make
 * the following `n` commits fail with DVM_ERR_AGAIN (a storage outage)
 * without changing anything. */
void dvm_mint_memstore_fail_next(dvm_mint_memstore *s, unsigned skip, unsigned n);

#endif

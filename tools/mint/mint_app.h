/* dvmstream — `dvm mint`: the HTTP Cashu mint around core/cashu's mint logic.
 *
 * Binds the NUT endpoints to cashu/mint.h over the SQLite store
 * (mint_sqlite.h) and serves them with mint_http.h:
 *   GET  /v1/info                          NUT-06
 *   GET  /v1/keys, /v1/keys/{keyset_id}    NUT-01
 *   GET  /v1/keysets                       NUT-02
 *   POST /v1/swap                          NUT-03
 *   POST /v1/mint/quote/bolt11             NUT-04
 *   GET  /v1/mint/quote/bolt11/{quote}     NUT-04
 *   POST /v1/mint/bolt11                   NUT-04
 *   POST /v1/melt/quote/bolt11             NUT-05 (fake backend, paid at once)
 *   GET  /v1/melt/quote/bolt11/{quote}     NUT-05
 *   POST /v1/melt/bolt11                   NUT-05
 *   POST /v1/checkstate                    NUT-07
 *   POST /v1/restore                       NUT-09
 * Every BlindSignature carries a DLEQ proof (NUT-12). Errors are HTTP 400
 * {"detail", "code"} with the NUT error codes; a storage failure is HTTP 500
 * (the client cannot know whether it happened). */
#ifndef DVM_MINT_APP_H
#define DVM_MINT_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "mint/mint_http.h"

typedef struct dvm_mint_app dvm_mint_app;

typedef struct dvm_mint_app_config {
    const char *db_path;       /* SQLite database (created if absent) */
    const uint8_t *seed;       /* 32 bytes from a seed file, or NULL: keep the
                                  stored seed or draw a fresh random one */
    uint64_t input_fee_ppk;    /* NUT-02 fee of the active keyset */
    size_t max_inputs;         /* 0: DVM_MINT_DEFAULT_MAX_INPUTS */
    size_t max_outputs;        /* 0: DVM_MINT_DEFAULT_MAX_OUTPUTS */
    const char *name;          /* NUT-06 name; NULL: "dvmstream mint" */
} dvm_mint_app_config;

/* Open the database, load (or create) the seed, derive the keysets.
 * DVM_ERR_STATE (database), DVM_ERR_EXISTS (seed file differs from the
 * database's seed), DVM_ERR_INVALID, DVM_ERR_NOMEM; reason in err. */
dvm_err dvm_mint_app_open(const dvm_mint_app_config *cfg, dvm_mint_app **out, char *err,
                          size_t errlen);
/* Close the database and free the mint (NULL is fine). */
void dvm_mint_app_close(dvm_mint_app *app);

/* The routing table (static) for dvm_http_server_start with app as `app`. */
const dvm_http_route *dvm_mint_app_routes(size_t *n);

/* The id of the active keyset ("00..."). */
const char *dvm_mint_app_active_keyset(const dvm_mint_app *app);

#endif

/* dvmstream — the node's long-term identity: an Ed25519 key pair in a file.
 *
 * File format (text): optional lines starting with '#', then one line of 64
 * lowercase hex characters, the 32-byte Ed25519 seed (libsodium
 * crypto_sign_seed_keypair). The public key is derived from it; it is the
 * Noise static key of every SecretStream this node opens and its
 * Hyperswarm identity. The file is created with mode 0600 (its directory
 * 0700) when missing; an existing file readable by group or others is
 * refused. */
#ifndef DVM_LIVE_IDENTITY_H
#define DVM_LIVE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "noise/noise.h"

/* The default identity path: $XDG_DATA_HOME/dvm/identity, else
 * $HOME/.local/share/dvm/identity. DVM_ERR_NOT_FOUND when neither variable
 * is set, DVM_ERR_TOO_LARGE when out (size cap) is too small. */
dvm_err dvm_identity_default_path(char *out, size_t cap);

/* Load the key pair from `path` (NULL = the default path), creating a new
 * random one (libsodium randombytes) when the file does not exist.
 * *created (may be NULL) tells which happened. Errors with a one-line
 * reason in errbuf: DVM_ERR_INVALID (malformed file), DVM_ERR_CRYPTO
 * (permissions too open), DVM_ERR_STATE (cannot read/create),
 * DVM_ERR_NOT_FOUND (no default path). */
dvm_err dvm_identity_load_or_create(const char *path, dvm_noise_keypair *kp, bool *created, char *errbuf,
                                    size_t errlen);

/* Lowercase hex of a 32-byte public key into out (65 bytes with NUL). */
void dvm_identity_hex(const uint8_t key[DVM_NOISE_PUBLIC_KEY_BYTES], char out[2 * DVM_NOISE_PUBLIC_KEY_BYTES + 1]);

/* Parse 64 hex characters (either case) into a 32-byte key; false on
 * anything else. */
bool dvm_identity_parse_hex(const char *hex, uint8_t key[DVM_NOISE_PUBLIC_KEY_BYTES]);

#endif

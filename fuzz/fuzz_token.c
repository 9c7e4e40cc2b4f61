/* Fuzz harness: the Cashu token decoders (cashu/token.h), and the
 * encode -> decode round trip of whatever decodes.
 *
 * The first input byte picks how the rest reaches the decoder, so the fuzzer
 * can work on the JSON and CBOR directly instead of through base64:
 *   0: the rest is a token string ("cashuA...", "cashuB...", anything)
 *   1: "cashuA" + base64url(rest)   -> V3 JSON decoder
 *   2: "cashuB" + base64url(rest)   -> V4 CBOR decoder
 *   3: "crawB" + rest               -> raw binary V4 decoder
 * Invariants (abort on violation): a failed decode leaves the token empty
 * and gives a reason; a token that decodes encodes as V3, V4 and raw (or is
 * DVM_ERR_TOO_LARGE once re-encoded), and each encoding decodes to an equal
 * token of the right version. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void round_trip(const dvm_token *t)
{
    for (int v = 3; v <= 5; v++) { /* 5: raw */
        dvm_buf b;
        dvm_buf_init(&b, 0);
        dvm_err e = v == 5 ? dvm_token_encode_raw(t, &b) : dvm_token_encode(t, v, &b);
        if (e == DVM_ERR_TOO_LARGE) {
            check(b.len == 0);
            dvm_buf_free(&b);
            continue;
        }
        check(e == DVM_OK);
        dvm_token u;
        char why[256];
        e = v == 5 ? dvm_token_decode_raw(b.data, b.len, &u, why, sizeof why)
                   : dvm_token_decode((const char *)b.data, b.len, &u, why, sizeof why);
        check(e == DVM_OK);
        check(u.version == (v == 3 ? 3 : 4));
        check(dvm_token_equal(t, &u));
        dvm_token_free(&u);
        dvm_buf_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    char *s = NULL;
    size_t n = 0;
    if (mode == 1 || mode == 2) {
        if (size > DVM_TOKEN_MAX_BYTES)
            return 0;
        size_t enc = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        s = malloc(6 + enc);
        if (!s)
            return 0;
        memcpy(s, mode == 1 ? "cashuA" : "cashuB", 6);
        sodium_bin2base64(s + 6, enc, data, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        n = 6 + enc - 1;
    } else {
        s = malloc(size + 5 + 1);
        if (!s)
            return 0;
        size_t off = 0;
        if (mode == 3) {
            memcpy(s, "crawB", 5);
            off = 5;
        }
        memcpy(s + off, data, size);
        n = off + size;
    }
    dvm_token t;
    char why[256];
    dvm_err e = mode == 3 ? dvm_token_decode_raw((const uint8_t *)s, n, &t, why, sizeof why)
                          : dvm_token_decode(s, n, &t, why, sizeof why);
    if (e == DVM_OK) {
        check(t.version == 3 || t.version == 4);
        check(t.n_proofs > 0 && t.n_proofs <= DVM_TOKEN_MAX_PROOFS);
        check(dvm_token_validate(&t, NULL, 0) == DVM_OK);
        round_trip(&t);
        dvm_token_free(&t);
    } else {
        check(t.proofs == NULL && t.n_proofs == 0);
        check(why[0] != '\0');
    }
    free(s);
    return 0;
}

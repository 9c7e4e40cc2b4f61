#include "wire/topic.h"

#include <sodium.h>
#include <stdio.h>

dvm_err dvm_topic(uint64_t kind, uint8_t out[DVM_TOPIC_BYTES])
{
    char name[64];
    int n = snprintf(name, sizeof name, "2020117-dvm-kind-%llu", (unsigned long long)kind);
    crypto_hash_sha256(out, (const unsigned char *)name, (unsigned long long)n);
    return DVM_OK;
}

dvm_err dvm_topic_hex(uint64_t kind, char out[2 * DVM_TOPIC_BYTES + 1])
{
    uint8_t t[DVM_TOPIC_BYTES];
    dvm_topic(kind, t);
    sodium_bin2hex(out, 2 * DVM_TOPIC_BYTES + 1, t, sizeof t);
    return DVM_OK;
}

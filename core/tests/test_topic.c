#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "wire/topic.h"

/* Independent computation: hash the literal string with libsodium directly. */
static void expect_topic(uint64_t kind, const char *literal)
{
    uint8_t want[32], got[32];
    crypto_hash_sha256(want, (const unsigned char *)literal, strlen(literal));
    cr_assert_eq(dvm_topic(kind, got), DVM_OK);
    cr_assert_arr_eq(got, want, 32, "topic of kind %llu", (unsigned long long)kind);
}

Test(topic, matches_sha256_of_the_seed_string)
{
    expect_topic(5100, "2020117-dvm-kind-5100");
    expect_topic(5302, "2020117-dvm-kind-5302");
    expect_topic(0, "2020117-dvm-kind-0");
}

Test(topic, hex_is_lowercase_and_known)
{
    char hex[65];
    dvm_topic_hex(5100, hex);
    /* sha256sum of the ASCII string "2020117-dvm-kind-5100" (coreutils). */
    cr_assert_str_eq(hex, "816c51f93a8e89cc366d3e31ca144d7178d4557a8d655004b0f7ba0f9bb796da");
}

Test(topic, kinds_differ)
{
    uint8_t a[32], b[32];
    dvm_topic(5100, a);
    dvm_topic(5101, b);
    cr_assert(memcmp(a, b, 32) != 0);
}

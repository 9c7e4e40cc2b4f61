/* dvmstream — Hyperswarm topic of a DVM kind.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Hyperswarm Connection":
 *   topic = SHA256("2020117-dvm-kind-{kind}")
 * (kind in decimal, no padding). */
#ifndef DVM_WIRE_TOPIC_H
#define DVM_WIRE_TOPIC_H

#include <stdint.h>

#include "common/err.h"

#define DVM_TOPIC_BYTES 32

/* Write the 32-byte topic of `kind` into out. Always DVM_OK. */
dvm_err dvm_topic(uint64_t kind, uint8_t out[DVM_TOPIC_BYTES]);

/* Write the topic as 64 lowercase hex characters plus NUL into out. */
dvm_err dvm_topic_hex(uint64_t kind, char out[2 * DVM_TOPIC_BYTES + 1]);

#endif

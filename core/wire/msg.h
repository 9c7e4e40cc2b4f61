/* dvmstream — the 2020117 DVM wire messages.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Wire Protocol" / "Message Types".
 * Ten message types, newline-delimited JSON, every message has `type` and
 * `id` (the job id). dvm_msg is one flat struct: only the fields of its
 * `type` are meaningful; the others are zero.
 *
 * Strings are borrowed views (dvm_str): not NUL-terminated, valid UTF-8.
 * After dvm_msg_decode they point into the decoder's scratch storage or
 * into the decoded line itself and stay valid until the next decode on the
 * same dvm_msg_decoder (or its free) and while the line's bytes are
 * unchanged (wire/codec.h).
 * When a caller builds a dvm_msg to encode, they point wherever the caller
 * likes and must stay valid for the duration of the encode call. */
#ifndef DVM_WIRE_MSG_H
#define DVM_WIRE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Largest integer a JSON number may carry on the wire: 2^53-1, the largest
 * integer JavaScript's JSON.parse represents exactly. */
#define DVM_JSON_MAX_SAFE_INT 9007199254740991ULL

typedef enum dvm_msg_type {
    DVM_MSG_NONE = 0,
    DVM_MSG_REQUEST,      /* C->P  id, kind, input, budget */
    DVM_MSG_OFFER,        /* P->C  id, sats_per_chunk, chunks_per_payment */
    DVM_MSG_PAYMENT,      /* C->P  id, token */
    DVM_MSG_PAYMENT_ACK,  /* P->C  id, amount */
    DVM_MSG_ACCEPTED,     /* P->C  id */
    DVM_MSG_CHUNK,        /* P->C  id, data [, seq] */
    DVM_MSG_PAY_REQUIRED, /* P->C  id, earned, next */
    DVM_MSG_RESULT,       /* P->C  id, output, total_sats */
    DVM_MSG_STOP,         /* C->P  id */
    DVM_MSG_ERROR         /* P->C  id, message */
} dvm_msg_type;

typedef struct dvm_str {
    const char *ptr; /* borrowed; may be NULL when len == 0 */
    size_t len;      /* bytes */
} dvm_str;

typedef struct dvm_msg {
    dvm_msg_type type;
    dvm_str id; /* job id, every type */

    /* request */
    uint64_t kind;   /* DVM job kind, e.g. 5100 */
    dvm_str input;   /* job input (prompt) */
    uint64_t budget; /* sats */

    /* offer */
    uint64_t sats_per_chunk;     /* sats */
    uint64_t chunks_per_payment; /* chunks */

    /* payment */
    dvm_str token; /* Cashu token, cashuA... or cashuB... */

    /* payment_ack */
    uint64_t amount; /* sats */

    /* chunk */
    dvm_str data;
    bool has_seq;  /* extension: `seq` present */
    uint64_t seq;  /* extension: 1-based chunk sequence number */

    /* pay_required */
    uint64_t earned; /* sats received so far for this job */
    uint64_t next;   /* sats needed to continue */

    /* result */
    dvm_str output;
    uint64_t total_sats; /* sats */

    /* error */
    dvm_str message;
} dvm_msg;

/* Wire name of a type ("request", "payment_ack", ...); "" for DVM_MSG_NONE
 * or an out-of-range value. Static storage. */
const char *dvm_msg_type_name(dvm_msg_type t);

/* Convenience constructor of a borrowed string from a NUL-terminated C
 * string (NULL gives the empty string). */
dvm_str dvm_str_c(const char *s);

#endif

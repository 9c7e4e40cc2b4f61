/* dvmstream — the DVM message codec: one NDJSON line <-> struct dvm_msg.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Wire Protocol" and "Message
 * Types" (ten types). Field names and JSON types:
 *
 *   type          fields (in encoding order after "type","id")
 *   request       kind:int, input:str, budget:int
 *   offer         sats_per_chunk:int, chunks_per_payment:int
 *   payment       token:str
 *   payment_ack   amount:int
 *   accepted      -
 *   chunk         data:str [, seq:int]   (seq: our extension, 1-based)
 *   pay_required  earned:int, next:int
 *   result        output:str, total_sats:int
 *   stop          -
 *   error         message:str
 *
 * Decoding rules (both paths below give identical results):
 *   - the line must be one JSON object (RFC 8259; whitespace allowed);
 *   - `type` and `id` are required strings; `type` must be one of the ten;
 *   - every field of the type is required with its JSON type; unknown
 *     fields are ignored; a duplicated key keeps its last value (as
 *     JSON.parse does);
 *   - int fields are JSON integers 0..2^53-1 written without fraction or
 *     exponent: 1.5, 1.0, 1e3, -1 and 2^53 are all rejected (the reference
 *     writes integers with JSON.stringify, which never emits "1.0");
 *     "-0" is accepted as 0 (it is the integer zero in JSON's grammar);
 *   - `seq` on chunk is optional; when present an integer 1..2^53-1;
 *   - strings are valid UTF-8 (RFC 3629; \u escapes with lone surrogates are
 *     rejected); \u0000 is allowed and kept, so lengths are explicit;
 *   - a line jansson cannot represent is rejected as invalid JSON even when
 *     the offending part is in an unknown field (where JSON.parse would not
 *     mind): integers beyond 64 bits, reals beyond double range, \u0000 in
 *     an object key, nesting deeper than jansson's limit (2048).
 * A rejected line yields DVM_ERR_INVALID and a short English reason fit to
 * send back in an `error` message, e.g. "missing field 'token' in payment",
 * "unknown message type 'foo'". Reasons are printable ASCII only.
 *
 * Encoding writes exactly the bytes of the reference implementation's
 * JSON.stringify(msg) + "\n" (ECMA-262 JSON.stringify / QuoteJSONString),
 * keys "type", "id", then the fields in the table's order: '"' and '\\'
 * escaped, \b \f \n \r \t, other bytes below 0x20 as \u00xx (lowercase
 * hex), everything else (non-ASCII, '/', DEL, U+2028) raw.
 *
 * Memory: a dvm_msg_decoder owns one scratch buffer for decoded strings
 * that differ from their JSON source; it grows to the largest line seen
 * (bounded by max_len) and is reused, so steady-state decoding does no
 * allocation of ours. The jansson path copies every string into the
 * scratch and allocates inside jansson per message. The chunk fast path
 * (below) allocates nothing and copies only strings with escapes: a string
 * without escapes (the usual chunk `id` and `data`) is returned as a view
 * into the line itself (zero copy).
 *
 * Speed (the chunk hot path, bench/bench_chunk.c): strings are scanned 16
 * bytes at a time (SSE2 on x86-64, 8-byte words elsewhere; wire/jscan.h);
 * the chunk encoder checks UTF-8, finds the bytes to escape and copies in
 * one pass when the output buffer already has room for the worst case. A
 * session that keeps its job's chunk head (dvm_msg_chunk_head) and the
 * tail of its next chunk (dvm_chunk_tail: `","seq":N}`, advanced in place)
 * neither encodes the id nor formats or parses seq per chunk
 * (dvm_msg_encode_chunk_with_tail, dvm_msg_decode_chunk_line; inline in
 * the sessions through the internal wire/chunk_fast.h). */
#ifndef DVM_WIRE_CODEC_H
#define DVM_WIRE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "wire/msg.h"

/* Default decoder input limit, bytes: 1 MiB, the framer's default. */
#define DVM_CODEC_DEFAULT_MAX_LEN ((size_t)1 << 20)

/* A reason buffer of this size always holds the whole reason. */
#define DVM_REASON_MAX 128

typedef struct dvm_msg_decoder {
    dvm_buf scratch;     /* decoded strings of the last message */
    size_t max_len;      /* bytes; longer inputs give DVM_ERR_TOO_LARGE */
    uint64_t fast_hits;  /* lines decoded by the chunk fast path */
    uint64_t slow_hits;  /* lines decoded (or rejected) by jansson */
} dvm_msg_decoder;

/* Initialise a decoder for lines of at most `max_len` bytes
 * (0 = DVM_CODEC_DEFAULT_MAX_LEN). Allocates nothing yet. */
void dvm_msg_decoder_init(dvm_msg_decoder *d, size_t max_len);

/* Release the scratch buffer; messages decoded earlier become invalid. */
void dvm_msg_decoder_free(dvm_msg_decoder *d);

/* Decode one line (no '\n'; as returned by dvm_framer_next) into *out.
 * Tries the chunk fast path, then jansson. On DVM_OK every dvm_str in *out
 * points into d's scratch or into `line` (the chunk fast path's zero-copy
 * views) and stays valid until the next decode on d (or
 * dvm_msg_decoder_free) AND while the bytes of `line` stay unchanged; for a
 * line from dvm_framer_next that is until the next framer call. Consume or
 * copy the strings before either. Fields not used by the type are zero.
 * Errors: DVM_ERR_INVALID (reason written), DVM_ERR_TOO_LARGE (len >
 * max_len; reason "message too large"), DVM_ERR_NOMEM. On error out->type
 * is DVM_MSG_NONE and every field is zero except out->id: when the line was
 * a JSON object with a string `id`, out->id holds it (in the scratch, as
 * above) so the caller can address its `error` reply to that job; else it
 * is empty. reason may be NULL (reason_cap 0); it is always NUL-terminated
 * when reason_cap > 0, truncated to fit. */
dvm_err dvm_msg_decode(dvm_msg_decoder *d, const void *line, size_t len,
                       dvm_msg *out, char *reason, size_t reason_cap);

/* The general path alone: jansson (json_loadb with JSON_ALLOW_NUL) and the
 * validation above. Same contract as dvm_msg_decode. For tests, fuzzing
 * and benchmarks. */
dvm_err dvm_msg_decode_json(dvm_msg_decoder *d, const void *line, size_t len,
                            dvm_msg *out, char *reason, size_t reason_cap);

/* The chunk fast path alone: a hand-written decoder for exactly
 *   {"type":"chunk","id":"...","data":"..."}  or
 *   {"type":"chunk","id":"...","data":"...","seq":N}
 * with no whitespace, keys in that order, no other key, string escapes
 * limited to \" \\ \/ \b \f \n \r \t and \uXXXX outside the surrogate
 * range, raw bytes valid UTF-8 and >= 0x20, N in 1..2^53-1 without leading
 * zeros. Strings without escapes point into `line` (see dvm_msg_decode for
 * the lifetime), others into d's scratch. Returns DVM_OK with *out set (the
 * same values dvm_msg_decode would give) when
 * the line has that shape, DVM_ERR_AGAIN when it is not sure (anything
 * else: the caller must use dvm_msg_decode_json). Never rejects a line by
 * itself. len > max_len gives DVM_ERR_AGAIN too. */
dvm_err dvm_msg_decode_fast(dvm_msg_decoder *d, const void *line, size_t len,
                            dvm_msg *out);

/* The head of every chunk line of job `id`, as dvm_msg_encode writes it:
 * `{"type":"chunk","id":` + the JSON string of id + `,"data":"` (up to and
 * including the data string's opening quote), appended to out. A session
 * keeps it to recognise its own chunk lines with one comparison (see
 * dvm_msg_decode_chunk_tail). Errors as dvm_msg_encode (DVM_ERR_INVALID:
 * id not valid UTF-8); out is unchanged on error. */
dvm_err dvm_msg_chunk_head(dvm_buf *out, dvm_str id);

/* dvm_msg_encode_chunk(out, id, data, has_seq, seq) for a `head` that is
 * dvm_msg_chunk_head(id) (kept by the caller): the same bytes, without
 * encoding the id again. Errors as dvm_msg_encode_chunk (DVM_ERR_INVALID
 * also for a head too short to be one); out is unchanged on error. */
dvm_err dvm_msg_encode_chunk_with_head(dvm_buf *out, dvm_str head, dvm_str data, bool has_seq,
                                       uint64_t seq);

/* The rest of the chunk fast path for a line whose first head_len bytes
 * the caller has found equal to a dvm_msg_chunk_head (so the id is known):
 * decodes the data string, the optional ,"seq":N and the closing brace
 * exactly as dvm_msg_decode_fast does (same rules, same values, same
 * lifetime of *data; d->fast_hits counted). DVM_OK with *data, *has_seq,
 * *seq set, or DVM_ERR_AGAIN when not sure (the caller must then decode the
 * whole line with dvm_msg_decode). Also DVM_ERR_AGAIN for len > max_len or
 * a head_len shorter than any chunk head or longer than the line. */
dvm_err dvm_msg_decode_chunk_tail(dvm_msg_decoder *d, const void *line, size_t len,
                                  size_t head_len, dvm_str *data, bool *has_seq,
                                  uint64_t *seq);

/* The end of the chunk line with sequence number `seq`, from the data
 * string's closing quote on, as dvm_msg_encode writes it:
 *   `","seq":` + seq in decimal (no leading zero) + `}` + "\n"
 * (len bytes of text; 11..26). A session keeps the one of its next chunk
 * and advances it with dvm_chunk_tail_next (an in-place decimal
 * increment) instead of formatting or parsing seq per chunk (see
 * dvm_msg_encode_chunk_with_tail, dvm_msg_decode_chunk_line). seq 0 with
 * len 0 is "none": a seq outside 1..2^53-1 (DVM_JSON_MAX_SAFE_INT). */
typedef struct dvm_chunk_tail {
    uint64_t seq;     /* 1..2^53-1, or 0 (none) */
    size_t len;       /* bytes of text; 0 for none */
    uint8_t text[32]; /* `","seq":N}\n` */
} dvm_chunk_tail;

/* Set t to the tail of seq (none when seq is 0 or above 2^53-1). */
void dvm_chunk_tail_set(dvm_chunk_tail *t, uint64_t seq);

/* Advance t to seq + 1 (none stays none; past 2^53-1 it becomes none).
 * Same result as dvm_chunk_tail_set(t, t->seq + 1) for a seq that is not
 * none. */
void dvm_chunk_tail_advance(dvm_chunk_tail *t);

/* dvm_chunk_tail_advance, with the common case inline: the last digit is
 * not 9 (only a digit changes). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dvm_chunk_tail_next(dvm_chunk_tail *t)
{
    /* a seq of 1..2^53-2 has len >= 11, so text[len - 3] is its last digit */
    if (t->seq - 1 < DVM_JSON_MAX_SAFE_INT - 1 && t->text[t->len - 3] != '9') {
        t->seq++;
        t->text[t->len - 3]++;
        return;
    }
    dvm_chunk_tail_advance(t);
}

/* dvm_msg_encode_chunk_with_head(out, head, data, true, t->seq) for a tail
 * t kept as above: the same bytes, with the seq digits copied from t.
 * Errors as dvm_msg_encode_chunk_with_head (DVM_ERR_INVALID also for a
 * tail that is none); out is unchanged on error. */
dvm_err dvm_msg_encode_chunk_with_tail(dvm_buf *out, dvm_str head, dvm_str data,
                                       const dvm_chunk_tail *t);

/* The chunk fast path for a session that knows both ends of the line it
 * expects: true when `line` (no '\n') is exactly head + the body of a JSON
 * string without escapes + t's text less its newline, where head is a
 * dvm_msg_chunk_head (kept by the caller) and the body is raw bytes >=
 * 0x20 other than '"' and '\\' forming valid UTF-8. Such a line is the
 * chunk {id of head, data = body, seq = t->seq}: dvm_msg_decode gives
 * exactly that, with the same *data (a view into `line`, same lifetime; d's
 * scratch is reset and d->fast_hits counted). False when not sure (any
 * other line, a tail that is none, len > d->max_len): nothing is changed
 * and the caller decodes the line the general way. */
bool dvm_msg_decode_chunk_line(dvm_msg_decoder *d, const void *line, size_t len, dvm_str head,
                               const dvm_chunk_tail *t, dvm_str *data);

/* Append the NDJSON line of m (JSON.stringify(m) + "\n" byte for byte, see
 * above) to out. Validates first: a known type, every string of the type
 * valid UTF-8, every integer <= 2^53-1, seq >= 1 when has_seq. Errors:
 * DVM_ERR_INVALID (m not encodable), DVM_ERR_TOO_LARGE (out->max reached),
 * DVM_ERR_NOMEM; out is unchanged on error. */
dvm_err dvm_msg_encode(const dvm_msg *m, dvm_buf *out);

/* Chunk encoder for the streaming hot path, identical output to
 * dvm_msg_encode of {type=chunk, id, data, has_seq, seq}; seq is written
 * only when has_seq. Errors as dvm_msg_encode. */
dvm_err dvm_msg_encode_chunk(dvm_buf *out, dvm_str id, dvm_str data,
                             bool has_seq, uint64_t seq);

/* True when a and b have the same type and the same values in that type's
 * fields (strings compared byte for byte; for chunk also has_seq and, when
 * set, seq). Fields not used by the type are ignored. */
bool dvm_msg_equal(const dvm_msg *a, const dvm_msg *b);

/* Type of a wire name ("payment_ack" -> DVM_MSG_PAYMENT_ACK); DVM_MSG_NONE
 * when unknown. n bytes, not NUL-terminated. */
dvm_msg_type dvm_msg_type_from_name(const char *name, size_t n);

#endif

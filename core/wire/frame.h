/* dvmstream — incremental NDJSON framer.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Wire Protocol": messages are
 * newline-delimited JSON. The framer turns a byte stream cut at arbitrary
 * points into complete lines:
 *   - a line is the bytes before a '\n'; the '\n' and one trailing '\r' are
 *     not part of it (CRLF peers work);
 *   - empty lines (also a lone "\r") are skipped silently;
 *   - a line longer than `max_line` bytes (after the '\r' strip) is reported
 *     once as DVM_ERR_TOO_LARGE and its bytes are discarded up to and
 *     including the next '\n'; framing then continues with the next line;
 *   - bytes after the last '\n' wait for more input (bounded by max_line).
 *
 * Zero copy on the hot path: dvm_framer_push only records the caller's
 * chunk; dvm_framer_next returns a pointer into that chunk whenever a whole
 * line lies inside it. Only a line that spans two or more pushes is copied
 * into the framer's own carry buffer (at most max_line + 1 bytes), so
 * memory is bounded by the limit whatever the peer sends.
 *
 * Usage (the driver loop):
 *     dvm_framer_push(&f, bytes, n);
 *     for (;;) {
 *         dvm_err e = dvm_framer_next(&f, &line, &len);
 *         if (e == DVM_ERR_AGAIN) break;          // chunk used up
 *         if (e == DVM_ERR_TOO_LARGE) { reply error; continue; }
 *         handle(line, len);
 *     }
 * Pure: no I/O, no globals; one framer per connection. */
#ifndef DVM_WIRE_FRAME_H
#define DVM_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Reason text for an `error` reply to an oversize line, shared by every
 * driver so peers see one wording. */
#define DVM_FRAME_TOO_LARGE_REASON "message too large"

/* Default line limit: 1 MiB (bytes, excluding the '\n' and a '\r'). */
#define DVM_FRAME_DEFAULT_MAX_LINE ((size_t)1 << 20)

typedef struct dvm_framer {
    size_t max_line;     /* bytes; lines longer than this are rejected */
    const uint8_t *in;   /* current pushed chunk (borrowed) */
    size_t in_len;       /* its length */
    size_t in_pos;       /* bytes of it already framed */
    dvm_buf carry;       /* partial line spanning pushes (<= max_line + 1) */
    bool carry_out;      /* carry was handed out; clear it on the next call */
    bool skipping;       /* discarding an oversize line up to the next '\n' */
    uint64_t lines;      /* lines returned so far */
    uint64_t oversize;   /* oversize lines reported so far */
} dvm_framer;

/* Initialise a framer whose lines may be at most `max_line` bytes
 * (0 = DVM_FRAME_DEFAULT_MAX_LINE). Allocates nothing yet; the carry
 * buffer grows on demand up to max_line + 1 bytes. */
void dvm_framer_init(dvm_framer *f, size_t max_line);

/* Release the carry buffer. The framer may be re-initialised afterwards. */
void dvm_framer_free(dvm_framer *f);

/* Hand the framer the next `len` bytes of the stream. The bytes are
 * borrowed, not copied: they must stay valid and unchanged until
 * dvm_framer_next has returned DVM_ERR_AGAIN for this chunk.
 * Returns DVM_ERR_STATE if the previous chunk has not been drained yet
 * (dvm_framer_next did not return DVM_ERR_AGAIN), DVM_OK otherwise.
 * len == 0 is allowed (data may then be NULL). */
dvm_err dvm_framer_push(dvm_framer *f, const void *data, size_t len);

/* Take the next complete line.
 *   DVM_OK            *line and *len set: the line without '\n' and trailing
 *                     '\r', never empty. It points into the pushed chunk or
 *                     into the framer's carry buffer, and stays valid until
 *                     the next dvm_framer_next/push/free call.
 *   DVM_ERR_TOO_LARGE a line exceeded max_line (reported once per line);
 *                     its bytes are being skipped. Keep calling.
 *   DVM_ERR_NOMEM     the carry buffer could not grow; the partial line is
 *                     dropped as if oversize (framing continues after the
 *                     next '\n').
 *   DVM_ERR_AGAIN     the pushed chunk is used up; any partial line was
 *                     saved. Push more bytes. */
dvm_err dvm_framer_next(dvm_framer *f, const uint8_t **line, size_t *len);

/* Bytes of an incomplete line currently held back (0 when the stream is at
 * a line boundary or inside a skipped oversize line). A driver may check
 * this at end of stream: a final line without '\n' is never returned, as in
 * the reference implementation (split on "\n", last piece kept). */
size_t dvm_framer_pending(const dvm_framer *f);

#endif

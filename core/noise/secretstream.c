/* Hyperswarm SecretStream framing; see secretstream.h for the wire format. */
#include "noise/secretstream.h"

#include <string.h>

#define NS_NAME "hyperswarm/secret-stream"

/* Reassembly and plaintext buffers above this size are released after use. */
#define KEEP_BUFFER_BYTES ((size_t)1 << 20)

void dvm_secretstream_id(const uint8_t handshake_hash[DVM_NOISE_HASH_BYTES], bool initiator,
                         uint8_t out[DVM_SECRETSTREAM_ID_BYTES])
{
    uint8_t ns[33], nsi[32];
    crypto_generichash_blake2b(ns, 32, (const uint8_t *)NS_NAME, sizeof NS_NAME - 1, NULL, 0);
    ns[32] = initiator ? 0 : 1;
    crypto_generichash_blake2b(nsi, 32, ns, sizeof ns, NULL, 0);
    crypto_generichash_blake2b(out, DVM_SECRETSTREAM_ID_BYTES, nsi, sizeof nsi, handshake_hash,
                               DVM_NOISE_HASH_BYTES);
}

static void put_u24(uint8_t *p, size_t n)
{
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
}

static dvm_err fail(dvm_secretstream *ss, dvm_err e, const char *reason)
{
    if (ss->state != DVM_SS_FAILED) {
        ss->state = DVM_SS_FAILED;
        ss->err = e;
        ss->reason = reason;
    }
    return e;
}

static void common_init(dvm_secretstream *ss, bool initiator, const dvm_secretstream_options *opts,
                        const dvm_secretstream_callbacks *cb, void *ctx)
{
    memset(ss, 0, sizeof *ss);
    ss->initiator = initiator;
    if (cb)
        ss->cb = *cb;
    ss->ctx = ctx;
    ss->max_message = DVM_SECRETSTREAM_MAX_MESSAGE;
    if (opts && opts->max_message && opts->max_message < DVM_SECRETSTREAM_MAX_MESSAGE)
        ss->max_message = opts->max_message;
    ss->filter_empty = opts && opts->filter_empty;
    dvm_buf_init(&ss->frame, DVM_SECRETSTREAM_MAX_FRAME);
    dvm_buf_init(&ss->plain, DVM_SECRETSTREAM_MAX_FRAME);
}

dvm_err dvm_secretstream_init(dvm_secretstream *ss, bool initiator, const dvm_noise_keypair *s,
                              const dvm_rng *rng, const dvm_secretstream_options *opts,
                              const dvm_secretstream_callbacks *cb, void *ctx)
{
    if (!ss || !s || !rng || !rng->fill)
        return DVM_ERR_INVALID;
    dvm_noise_pattern pattern = opts ? opts->pattern : DVM_NOISE_XX;
    const uint8_t *rpk = opts ? opts->remote_public_key : NULL;
    common_init(ss, initiator, opts, cb, ctx);
    dvm_err e = dvm_noise_init(&ss->hs, pattern, initiator, s, NULL, 0, pattern == DVM_NOISE_IK ? rpk : NULL);
    if (e) {
        ss->state = DVM_SS_FAILED;
        ss->err = e;
        ss->reason = "invalid handshake parameters";
        return e;
    }
    ss->rng = *rng;
    memcpy(ss->public_key, s->public_key, sizeof ss->public_key);
    ss->state = DVM_SS_HANDSHAKE;
    return DVM_OK;
}

/* Keys known: set up push, append our header frame, report completion. */
static dvm_err setup_stream(dvm_secretstream *ss, dvm_buf *out)
{
    uint8_t frame[3 + DVM_SECRETSTREAM_HEADER_BYTES];
    put_u24(frame, DVM_SECRETSTREAM_HEADER_BYTES);
    dvm_secretstream_id(ss->handshake_hash, ss->initiator, frame + 3);
    /* init_push would draw the header from libsodium's own randombytes; the
     * core takes randomness only from its dvm_rng, so draw the header here
     * and derive the push state with init_pull, which computes the same
     * state from a given header (HChaCha20 subkey + nonce, counter 1). */
    uint8_t *header = frame + 3 + DVM_SECRETSTREAM_ID_BYTES;
    dvm_rng_fill(&ss->rng, header, crypto_secretstream_xchacha20poly1305_HEADERBYTES);
    crypto_secretstream_xchacha20poly1305_init_pull(&ss->push, header, ss->tx);
    dvm_err e = dvm_buf_append(out, frame, sizeof frame);
    if (e)
        return fail(ss, e, "output buffer full");
    ss->handshake_done = true;
    ss->state = DVM_SS_AWAIT_HEADER;
    if (ss->cb.on_handshake)
        ss->cb.on_handshake(ss->ctx);
    return DVM_OK;
}

dvm_err dvm_secretstream_init_from_handshake(dvm_secretstream *ss, bool initiator, const uint8_t *tx,
                                             const uint8_t *rx, const uint8_t *handshake_hash,
                                             const uint8_t *public_key, const uint8_t *remote_public_key,
                                             const dvm_rng *rng, const dvm_secretstream_options *opts,
                                             const dvm_secretstream_callbacks *cb, void *ctx)
{
    if (!ss || !tx || !rx || !handshake_hash || !public_key || !remote_public_key || !rng || !rng->fill)
        return DVM_ERR_INVALID;
    common_init(ss, initiator, opts, cb, ctx);
    ss->rng = *rng;
    memcpy(ss->tx, tx, sizeof ss->tx);
    memcpy(ss->rx, rx, sizeof ss->rx);
    memcpy(ss->handshake_hash, handshake_hash, sizeof ss->handshake_hash);
    memcpy(ss->public_key, public_key, sizeof ss->public_key);
    memcpy(ss->remote_public_key, remote_public_key, sizeof ss->remote_public_key);
    ss->hs.complete = true; /* marks "handshake done elsewhere" for start() */
    ss->state = DVM_SS_HANDSHAKE;
    return DVM_OK;
}

/* Append one handshake message as a frame. */
static dvm_err write_handshake(dvm_secretstream *ss, dvm_buf *out)
{
    dvm_err e = dvm_buf_reserve(out, 3 + DVM_NOISE_MAX_MESSAGE);
    if (e)
        return fail(ss, e, "output buffer full");
    size_t n = 0;
    e = dvm_noise_write_message(&ss->hs, &ss->rng, NULL, 0, out->data + out->len + 3, DVM_NOISE_MAX_MESSAGE, &n);
    if (e)
        return fail(ss, e, "noise handshake failed");
    put_u24(out->data + out->len, n);
    out->len += 3 + n;
    return DVM_OK;
}

static dvm_err handshake_done(dvm_secretstream *ss, dvm_buf *out)
{
    memcpy(ss->tx, dvm_noise_tx(&ss->hs), sizeof ss->tx);
    memcpy(ss->rx, dvm_noise_rx(&ss->hs), sizeof ss->rx);
    memcpy(ss->handshake_hash, dvm_noise_handshake_hash(&ss->hs), sizeof ss->handshake_hash);
    memcpy(ss->remote_public_key, dvm_noise_remote_static(&ss->hs), sizeof ss->remote_public_key);
    dvm_noise_wipe(&ss->hs);
    return setup_stream(ss, out);
}

dvm_err dvm_secretstream_start(dvm_secretstream *ss, dvm_buf *out)
{
    if (!ss || !out || ss->started || ss->state != DVM_SS_HANDSHAKE)
        return DVM_ERR_STATE;
    ss->started = true;
    if (ss->hs.complete) { /* pre-handshaken */
        memset(&ss->hs, 0, sizeof ss->hs);
        return setup_stream(ss, out);
    }
    if (ss->initiator)
        return write_handshake(ss, out);
    return DVM_OK;
}

static dvm_err on_frame(dvm_secretstream *ss, const uint8_t *body, size_t len, dvm_buf *out)
{
    switch (ss->state) {
    case DVM_SS_HANDSHAKE: {
        dvm_err e = dvm_noise_read_message(&ss->hs, body, len, NULL, 0, NULL);
        if (e)
            return fail(ss, e, e == DVM_ERR_CRYPTO ? "noise handshake failed: bad MAC or key"
                                                   : "noise handshake failed: malformed message");
        if (dvm_noise_wants_write(&ss->hs)) {
            e = write_handshake(ss, out);
            if (e)
                return e;
        }
        if (dvm_noise_is_complete(&ss->hs))
            return handshake_done(ss, out);
        return DVM_OK;
    }
    case DVM_SS_AWAIT_HEADER: {
        uint8_t want[DVM_SECRETSTREAM_ID_BYTES];
        if (len != DVM_SECRETSTREAM_HEADER_BYTES)
            return fail(ss, DVM_ERR_PROTO, "invalid header message received");
        dvm_secretstream_id(ss->handshake_hash, !ss->initiator, want);
        if (sodium_memcmp(want, body, sizeof want) != 0)
            return fail(ss, DVM_ERR_PROTO, "invalid header received (stream id mismatch)");
        if (crypto_secretstream_xchacha20poly1305_init_pull(&ss->pull, body + DVM_SECRETSTREAM_ID_BYTES, ss->rx) != 0)
            return fail(ss, DVM_ERR_CRYPTO, "invalid secretstream header");
        ss->state = DVM_SS_OPEN;
        return DVM_OK;
    }
    case DVM_SS_OPEN: {
        size_t plen = len - DVM_SECRETSTREAM_ABYTES; /* len checked by the caller */
        dvm_buf_reset(&ss->plain);
        dvm_err e = dvm_buf_reserve(&ss->plain, plen ? plen : 1);
        if (e)
            return fail(ss, e, "out of memory");
        unsigned long long ml = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&ss->pull, ss->plain.data, &ml, &tag, body, len, NULL, 0) != 0)
            return fail(ss, DVM_ERR_CRYPTO, "message authentication failed");
        ss->messages_in++;
        if (ml == 0 && ss->filter_empty)
            return DVM_OK;
        if (ss->cb.on_message)
            ss->cb.on_message(ss->ctx, ss->plain.data, (size_t)ml);
        return DVM_OK;
    }
    default:
        return DVM_ERR_STATE;
    }
}

/* Validate a frame length as soon as its prefix is complete, so no peer can
 * make us buffer more than the current phase allows. */
static dvm_err check_len(dvm_secretstream *ss, size_t n)
{
    switch (ss->state) {
    case DVM_SS_HANDSHAKE:
        if (n > DVM_NOISE_MAX_MESSAGE)
            return fail(ss, DVM_ERR_TOO_LARGE, "handshake message too large");
        return DVM_OK;
    case DVM_SS_AWAIT_HEADER:
        if (n != DVM_SECRETSTREAM_HEADER_BYTES)
            return fail(ss, DVM_ERR_PROTO, "invalid header message received");
        return DVM_OK;
    case DVM_SS_OPEN:
        if (n < DVM_SECRETSTREAM_ABYTES)
            return fail(ss, DVM_ERR_INVALID, "invalid message received (shorter than its MAC)");
        if (n - DVM_SECRETSTREAM_ABYTES > ss->max_message)
            return fail(ss, DVM_ERR_TOO_LARGE, "message too large");
        return DVM_OK;
    default:
        return DVM_ERR_STATE;
    }
}

dvm_err dvm_secretstream_recv(dvm_secretstream *ss, const uint8_t *data, size_t len, dvm_buf *out)
{
    if (!ss || !out || (len && !data))
        return DVM_ERR_INVALID;
    if (ss->state == DVM_SS_FAILED)
        return ss->err ? ss->err : DVM_ERR_STATE;
    if (!ss->started)
        return DVM_ERR_STATE;
    size_t off = 0;
    while (off < len) {
        if (!ss->in_body) {
            while (ss->lenhave < 3 && off < len)
                ss->lenbuf[ss->lenhave++] = data[off++];
            if (ss->lenhave < 3)
                break;
            ss->frame_len = (size_t)ss->lenbuf[0] | (size_t)ss->lenbuf[1] << 8 | (size_t)ss->lenbuf[2] << 16;
            ss->lenhave = 0;
            dvm_err e = check_len(ss, ss->frame_len);
            if (e)
                return e;
            ss->in_body = true;
            dvm_buf_reset(&ss->frame);
        }
        size_t avail = len - off;
        dvm_err e;
        if (ss->frame.len == 0 && avail >= ss->frame_len) {
            /* Whole frame in the input: no copy. */
            ss->in_body = false;
            e = on_frame(ss, data + off, ss->frame_len, out);
            off += ss->frame_len;
        } else {
            size_t take = ss->frame_len - ss->frame.len;
            if (take > avail)
                take = avail;
            e = dvm_buf_append(&ss->frame, data + off, take);
            if (e)
                return fail(ss, e, "out of memory");
            off += take;
            if (ss->frame.len < ss->frame_len)
                break;
            ss->in_body = false;
            e = on_frame(ss, ss->frame.data, ss->frame.len, out);
            dvm_buf_reset(&ss->frame);
            if (ss->frame.cap > KEEP_BUFFER_BYTES)
                dvm_buf_free(&ss->frame); /* do not hold a 16 MiB buffer for good */
        }
        if (ss->plain.cap > KEEP_BUFFER_BYTES) {
            sodium_memzero(ss->plain.data, ss->plain.cap);
            dvm_buf_free(&ss->plain);
        }
        if (e)
            return e;
        if (ss->state == DVM_SS_FAILED)
            return ss->err;
    }
    /* Zero-length frames are complete as soon as their prefix is. */
    while (ss->in_body && ss->frame_len == 0) {
        ss->in_body = false;
        dvm_err e = on_frame(ss, data + off, 0, out);
        if (e)
            return e;
    }
    return DVM_OK;
}

dvm_err dvm_secretstream_seal(dvm_secretstream *ss, const uint8_t *msg, size_t len, uint8_t *out)
{
    if (!ss || !out || (len && !msg))
        return DVM_ERR_INVALID;
    if (ss->state == DVM_SS_FAILED || !ss->handshake_done)
        return DVM_ERR_STATE;
    if (len > DVM_SECRETSTREAM_MAX_MESSAGE)
        return DVM_ERR_TOO_LARGE;
    put_u24(out, len + DVM_SECRETSTREAM_ABYTES);
    crypto_secretstream_xchacha20poly1305_push(&ss->push, out + 3, NULL, msg, len, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    ss->messages_out++;
    return DVM_OK;
}

dvm_err dvm_secretstream_send(dvm_secretstream *ss, const uint8_t *msg, size_t len, dvm_buf *out)
{
    if (!ss || !out || (len && !msg))
        return DVM_ERR_INVALID;
    if (ss->state == DVM_SS_FAILED || !ss->handshake_done)
        return DVM_ERR_STATE;
    if (len > DVM_SECRETSTREAM_MAX_MESSAGE)
        return DVM_ERR_TOO_LARGE;
    size_t n = DVM_SECRETSTREAM_FRAME_SIZE(len);
    dvm_err e = dvm_buf_reserve(out, n);
    if (e)
        return e;
    e = dvm_secretstream_seal(ss, msg, len, out->data + out->len);
    if (e)
        return e;
    out->len += n;
    return DVM_OK;
}

bool dvm_secretstream_is_ready(const dvm_secretstream *ss)
{
    return ss->handshake_done && ss->state != DVM_SS_FAILED;
}

enum dvm_secretstream_state dvm_secretstream_state(const dvm_secretstream *ss) { return ss->state; }

const uint8_t *dvm_secretstream_public_key(const dvm_secretstream *ss)
{
    return ss->handshake_done ? ss->public_key : NULL;
}

const uint8_t *dvm_secretstream_remote_public_key(const dvm_secretstream *ss)
{
    return ss->handshake_done ? ss->remote_public_key : NULL;
}

const uint8_t *dvm_secretstream_handshake_hash(const dvm_secretstream *ss)
{
    return ss->handshake_done ? ss->handshake_hash : NULL;
}

const char *dvm_secretstream_error(const dvm_secretstream *ss)
{
    return ss->state == DVM_SS_FAILED ? (ss->reason ? ss->reason : "failed") : NULL;
}

void dvm_secretstream_free(dvm_secretstream *ss)
{
    if (!ss)
        return;
    if (ss->plain.data)
        sodium_memzero(ss->plain.data, ss->plain.cap);
    dvm_buf_free(&ss->frame);
    dvm_buf_free(&ss->plain);
    sodium_memzero(ss, sizeof *ss);
    ss->state = DVM_SS_FAILED;
}

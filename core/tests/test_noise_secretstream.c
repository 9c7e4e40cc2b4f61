/* core/noise SecretStream framing: against a transcript written by the
 * JavaScript @hyperswarm/secret-stream (ci/interop/gen_noise_vectors.mjs),
 * C-vs-C at every split point, keep-alives, limits, tampering and frames
 * out of place. */
#include "noise_test_util.h"
#include "noise/secretstream.h"

#define TRANSCRIPT "fixtures/vectors/noise/secretstream_transcript.json"

static void init_sodium(void) { cr_assert(sodium_init() >= 0); }
TestSuite(secretstream, .init = init_sodium);

/* A peer: stream + its outgoing bytes + what it received. */
typedef struct peer {
    dvm_secretstream ss;
    dvm_buf out;
    test_rng tr;
    dvm_rng rng;
    dvm_noise_keypair kp;
    unsigned handshakes;
    size_t n_msgs;
    uint8_t *msgs[64];
    size_t lens[64];
    /* for bulk runs: count and a running hash instead of copies */
    bool bulk;
    uint64_t bulk_count;
    crypto_generichash_state bulk_hash;
} peer;

static void on_handshake(void *ctx) { ((peer *)ctx)->handshakes++; }
static void on_message(void *ctx, const uint8_t *m, size_t len)
{
    peer *p = ctx;
    if (p->bulk) {
        p->bulk_count++;
        uint8_t l[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), 0};
        crypto_generichash_update(&p->bulk_hash, l, 4);
        crypto_generichash_update(&p->bulk_hash, m, len);
        return;
    }
    cr_assert_lt(p->n_msgs, 64);
    p->msgs[p->n_msgs] = malloc(len ? len : 1);
    memcpy(p->msgs[p->n_msgs], m, len);
    p->lens[p->n_msgs++] = len;
}

static const dvm_secretstream_callbacks CBS = {on_handshake, on_message};

static void peer_init(peer *p, bool initiator, uint64_t seed, const dvm_secretstream_options *opts)
{
    memset(p, 0, sizeof *p);
    p->rng = test_rng_make(&p->tr, seed);
    dvm_noise_keypair_generate(&p->kp, &p->rng);
    dvm_buf_init(&p->out, 0);
    cr_assert_eq(dvm_secretstream_init(&p->ss, initiator, &p->kp, &p->rng, opts, &CBS, p), DVM_OK);
}

static void peer_free(peer *p)
{
    for (size_t i = 0; i < p->n_msgs; i++)
        free(p->msgs[i]);
    dvm_secretstream_free(&p->ss);
    dvm_buf_free(&p->out);
}

/* Move everything `from` wrote into `to`, in pieces of `split` bytes. */
static dvm_err pump(peer *from, peer *to, size_t split)
{
    dvm_buf in = from->out;
    dvm_buf_init(&from->out, 0);
    dvm_err e = DVM_OK;
    for (size_t off = 0; off < in.len && !e;) {
        size_t n = in.len - off < split ? in.len - off : split;
        e = dvm_secretstream_recv(&to->ss, in.data + off, n, &to->out);
        off += n;
    }
    dvm_buf_free(&in);
    return e;
}

static void pump_until_quiet(peer *a, peer *b, size_t split)
{
    for (int i = 0; i < 10 && (a->out.len || b->out.len); i++) {
        cr_assert_eq(pump(a, b, split), DVM_OK, "b: %s", dvm_secretstream_error(&b->ss));
        cr_assert_eq(pump(b, a, split), DVM_OK, "a: %s", dvm_secretstream_error(&a->ss));
    }
}

static void connect_pair(peer *a, peer *b, size_t split)
{
    cr_assert_eq(dvm_secretstream_start(&a->ss, &a->out), DVM_OK);
    cr_assert_eq(dvm_secretstream_start(&b->ss, &b->out), DVM_OK);
    pump_until_quiet(a, b, split);
    cr_assert_eq(a->handshakes, 1);
    cr_assert_eq(b->handshakes, 1);
    cr_assert_eq(dvm_secretstream_state(&a->ss), DVM_SS_OPEN);
    cr_assert_eq(dvm_secretstream_state(&b->ss), DVM_SS_OPEN);
    cr_assert_arr_eq(dvm_secretstream_remote_public_key(&a->ss), b->kp.public_key, 32);
    cr_assert_arr_eq(dvm_secretstream_remote_public_key(&b->ss), a->kp.public_key, 32);
    cr_assert_arr_eq(dvm_secretstream_public_key(&a->ss), a->kp.public_key, 32);
    cr_assert_arr_eq(dvm_secretstream_handshake_hash(&a->ss), dvm_secretstream_handshake_hash(&b->ss), 64);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + salt + (i >> 8));
}

Test(secretstream, c_vs_c_at_every_split_size)
{
    size_t splits[] = {1, 2, 3, 4, 5, 7, 17, 56, 59, 100, 1000, (size_t)-1};
    for (unsigned s = 0; s < sizeof splits / sizeof *splits; s++) {
        peer a, b;
        peer_init(&a, true, 1 + s, NULL);
        peer_init(&b, false, 100 + s, NULL);
        connect_pair(&a, &b, splits[s]);
        size_t sizes[] = {0, 1, 1000, 3, 0, 70000};
        uint8_t *buf = malloc(70000);
        for (unsigned i = 0; i < 6; i++) {
            fill_pattern(buf, sizes[i], i);
            cr_assert_eq(dvm_secretstream_send(&a.ss, buf, sizes[i], &a.out), DVM_OK);
            cr_assert_eq(dvm_secretstream_send(&b.ss, buf, sizes[i], &b.out), DVM_OK);
        }
        pump_until_quiet(&a, &b, splits[s]);
        cr_assert_eq(a.n_msgs, 6);
        cr_assert_eq(b.n_msgs, 6);
        for (unsigned i = 0; i < 6; i++) {
            fill_pattern(buf, sizes[i], i);
            cr_assert_eq(b.lens[i], sizes[i]);
            cr_assert_eq(a.lens[i], sizes[i]);
            if (sizes[i]) {
                cr_assert_arr_eq(b.msgs[i], buf, sizes[i]);
                cr_assert_arr_eq(a.msgs[i], buf, sizes[i]);
            }
        }
        free(buf);
        peer_free(&a);
        peer_free(&b);
    }
}

Test(secretstream, largest_message_and_one_byte_more)
{
    peer a, b;
    peer_init(&a, true, 1, NULL);
    peer_init(&b, false, 2, NULL);
    connect_pair(&a, &b, (size_t)-1);
    size_t max = DVM_SECRETSTREAM_MAX_MESSAGE;
    cr_assert_eq(max, 16777215u - 17u);
    uint8_t *buf = malloc(max + 1);
    fill_pattern(buf, max + 1, 9);
    cr_assert_eq(dvm_secretstream_send(&a.ss, buf, max + 1, &a.out), DVM_ERR_TOO_LARGE);
    cr_assert_eq(a.out.len, 0);
    cr_assert_eq(dvm_secretstream_send(&a.ss, buf, max, &a.out), DVM_OK);
    cr_assert_eq(a.out.len, 16777215u + 3u);
    cr_assert_eq(a.out.data[0], 0xff);
    cr_assert_eq(a.out.data[1], 0xff);
    cr_assert_eq(a.out.data[2], 0xff);
    cr_assert_eq(pump(&a, &b, 65536), DVM_OK);
    cr_assert_eq(b.n_msgs, 1);
    cr_assert_eq(b.lens[0], max);
    cr_assert(memcmp(b.msgs[0], buf, max) == 0);
    free(buf);
    peer_free(&a);
    peer_free(&b);
}

Test(secretstream, many_small_messages_in_order)
{
    peer a, b;
    peer_init(&a, true, 3, NULL);
    peer_init(&b, false, 4, NULL);
    connect_pair(&a, &b, (size_t)-1);
    b.bulk = true;
    crypto_generichash_init(&b.bulk_hash, NULL, 0, 32);
    crypto_generichash_state want;
    crypto_generichash_init(&want, NULL, 0, 32);
    for (uint32_t i = 0; i < 100000; i++) {
        uint8_t m[8] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24), 'd', 'v', 'm', '!'};
        size_t len = 4 + i % 5;
        uint8_t l[4] = {(uint8_t)len, 0, 0, 0};
        crypto_generichash_update(&want, l, 4);
        crypto_generichash_update(&want, m, len);
        cr_assert_eq(dvm_secretstream_send(&a.ss, m, len, &a.out), DVM_OK);
        if (a.out.len > 1 << 20)
            cr_assert_eq(pump(&a, &b, 4093), DVM_OK);
    }
    cr_assert_eq(pump(&a, &b, 4093), DVM_OK);
    cr_assert_eq(b.bulk_count, 100000);
    uint8_t h1[32], h2[32];
    crypto_generichash_final(&want, h1, 32);
    crypto_generichash_final(&b.bulk_hash, h2, 32);
    cr_assert_arr_eq(h1, h2, 32, "messages arrived altered or out of order");
    peer_free(&a);
    peer_free(&b);
}

Test(secretstream, keep_alives_are_delivered_or_filtered)
{
    dvm_secretstream_options filt = {.filter_empty = true};
    peer a, b;
    peer_init(&a, true, 5, NULL);
    peer_init(&b, false, 6, &filt);
    connect_pair(&a, &b, (size_t)-1);
    cr_assert_eq(dvm_secretstream_send(&a.ss, NULL, 0, &a.out), DVM_OK);
    cr_assert_eq(a.out.len, 20);
    cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"x", 1, &a.out), DVM_OK);
    cr_assert_eq(dvm_secretstream_send(&b.ss, NULL, 0, &b.out), DVM_OK);
    pump_until_quiet(&a, &b, 1);
    cr_assert_eq(b.n_msgs, 1, "filtered side drops the keep-alive");
    cr_assert_eq(b.lens[0], 1);
    cr_assert_eq(a.n_msgs, 1, "unfiltered side delivers the empty message");
    cr_assert_eq(a.lens[0], 0);
    peer_free(&a);
    peer_free(&b);
}

Test(secretstream, in_band_ik_and_prehandshaken_streams)
{
    /* In-band IK: the initiator knows the responder's key. */
    peer a, b;
    peer_init(&b, false, 8, NULL);
    dvm_secretstream_options ik = {.pattern = DVM_NOISE_IK, .remote_public_key = b.kp.public_key};
    peer_init(&a, true, 7, &ik);
    dvm_secretstream_free(&b.ss);
    dvm_secretstream_options ikr = {.pattern = DVM_NOISE_IK};
    cr_assert_eq(dvm_secretstream_init(&b.ss, false, &b.kp, &b.rng, &ikr, &CBS, &b), DVM_OK);
    connect_pair(&a, &b, 5);
    cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"ik", 2, &a.out), DVM_OK);
    pump_until_quiet(&a, &b, 5);
    cr_assert_eq(b.n_msgs, 1);
    peer_free(&a);
    peer_free(&b);

    /* A handshake done elsewhere (HyperDHT): streams from its keys. */
    test_rng t;
    dvm_rng rng = test_rng_make(&t, 77);
    dvm_noise_keypair ki, kr;
    dvm_noise_keypair_generate(&ki, &rng);
    dvm_noise_keypair_generate(&kr, &rng);
    dvm_noise_handshake hi, hr;
    uint8_t m[256];
    size_t n;
    dvm_noise_init(&hi, DVM_NOISE_IK, true, &ki, (const uint8_t *)"dht", 3, kr.public_key);
    dvm_noise_init(&hr, DVM_NOISE_IK, false, &kr, (const uint8_t *)"dht", 3, NULL);
    cr_assert_eq(dvm_noise_write_message(&hi, &rng, NULL, 0, m, sizeof m, &n), DVM_OK);
    cr_assert_eq(dvm_noise_read_message(&hr, m, n, NULL, 0, NULL), DVM_OK);
    cr_assert_eq(dvm_noise_write_message(&hr, &rng, NULL, 0, m, sizeof m, &n), DVM_OK);
    cr_assert_eq(dvm_noise_read_message(&hi, m, n, NULL, 0, NULL), DVM_OK);
    peer c, d;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    c.kp = ki;
    d.kp = kr;
    c.rng = test_rng_make(&c.tr, 1);
    d.rng = test_rng_make(&d.tr, 2);
    cr_assert_eq(dvm_secretstream_init_from_handshake(&c.ss, true, dvm_noise_tx(&hi), dvm_noise_rx(&hi),
                                                      dvm_noise_handshake_hash(&hi), ki.public_key, kr.public_key,
                                                      &c.rng, NULL, &CBS, &c),
                 DVM_OK);
    cr_assert_eq(dvm_secretstream_init_from_handshake(&d.ss, false, dvm_noise_tx(&hr), dvm_noise_rx(&hr),
                                                      dvm_noise_handshake_hash(&hr), kr.public_key, ki.public_key,
                                                      &d.rng, NULL, &CBS, &d),
                 DVM_OK);
    connect_pair(&c, &d, 2);
    cr_assert_eq(dvm_secretstream_send(&d.ss, (const uint8_t *)"dht", 3, &d.out), DVM_OK);
    pump_until_quiet(&c, &d, 2);
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.lens[0], 3);
    peer_free(&c);
    peer_free(&d);
}

/* ---- the JavaScript transcript --------------------------------------- */

static uint8_t *concat_writes(json_t *arr, size_t *len, size_t *first_len)
{
    dvm_buf b;
    dvm_buf_init(&b, 0);
    size_t i;
    json_t *w;
    json_array_foreach(arr, i, w)
    {
        size_t n;
        uint8_t *p = unhex(json_string_value(w), &n);
        if (i == 0 && first_len)
            *first_len = n;
        cr_assert_eq(dvm_buf_append(&b, p, n), DVM_OK);
        free(p);
    }
    *len = b.len;
    return b.data;
}

static void check_messages(peer *p, json_t *want)
{
    cr_assert_eq(p->n_msgs, json_array_size(want));
    for (size_t i = 0; i < p->n_msgs; i++) {
        size_t n;
        uint8_t *w = unhex(json_string_value(json_array_get(want, i)), &n);
        cr_assert_eq(p->lens[i], n, "message %zu", i);
        if (n)
            cr_assert_arr_eq(p->msgs[i], w, n);
        free(w);
    }
}

static void transcript_side(bool initiator, size_t split)
{
    json_t *t = load_fixture(TRANSCRIPT);
    uint8_t seed[32], eph[32], hh[64];
    unhex_into(jstr(t, initiator ? "initiator_static_seed" : "responder_static_seed"), seed, 32);
    unhex_into(jstr(t, initiator ? "initiator_ephemeral_seed" : "responder_ephemeral_seed"), eph, 32);
    unhex_into(jstr(t, "handshake_hash"), hh, 64);
    peer p;
    memset(&p, 0, sizeof p);
    p.rng = test_rng_make(&p.tr, 5);
    test_rng_push(&p.tr, eph, 32);
    dvm_noise_keypair_from_seed(&p.kp, seed);
    dvm_buf_init(&p.out, 0);
    cr_assert_eq(dvm_secretstream_init(&p.ss, initiator, &p.kp, &p.rng, NULL, &CBS, &p), DVM_OK);
    cr_assert_eq(dvm_secretstream_start(&p.ss, &p.out), DVM_OK);

    size_t ours_len, ours_first, theirs_len;
    uint8_t *ours = concat_writes(json_object_get(t, initiator ? "initiator_writes" : "responder_writes"), &ours_len,
                                  &ours_first);
    uint8_t *theirs = concat_writes(json_object_get(t, initiator ? "responder_writes" : "initiator_writes"),
                                    &theirs_len, NULL);
    for (size_t off = 0; off < theirs_len; off += split) {
        size_t n = theirs_len - off < split ? theirs_len - off : split;
        cr_assert_eq(dvm_secretstream_recv(&p.ss, theirs + off, n, &p.out), DVM_OK, "%s",
                     dvm_secretstream_error(&p.ss));
    }
    cr_assert_eq(p.handshakes, 1);
    /* Our handshake bytes equal the JS side's; our header carries the same
     * stream id (its secretstream header part is random on both sides). */
    size_t hs_bytes = initiator ? 35 + 67 : 99;
    cr_assert_geq(p.out.len, hs_bytes + 59);
    cr_assert_arr_eq(p.out.data, ours, hs_bytes);
    cr_assert_arr_eq(p.out.data + hs_bytes, ours + hs_bytes, 3 + 32, "stream id header");
    cr_assert_arr_eq(dvm_secretstream_handshake_hash(&p.ss), hh, 64);
    check_messages(&p, json_object_get(t, initiator ? "responder_messages" : "initiator_messages"));
    (void)ours_first;
    free(ours);
    free(theirs);
    peer_free(&p);
    json_decref(t);
}

Test(secretstream, reads_the_javascript_transcript_both_roles)
{
    size_t splits[] = {1, 3, 13, 59, (size_t)-1};
    for (unsigned i = 0; i < 5; i++) {
        transcript_side(true, splits[i]);
        transcript_side(false, splits[i]);
    }
}

/* ---- failures ---------------------------------------------------------- */

static void open_pair(peer *a, peer *b)
{
    peer_init(a, true, 21, NULL);
    peer_init(b, false, 22, NULL);
    connect_pair(a, b, (size_t)-1);
}

static void expect_failed(peer *p, dvm_err want)
{
    cr_assert_eq(dvm_secretstream_state(&p->ss), DVM_SS_FAILED);
    cr_assert_not_null(dvm_secretstream_error(&p->ss));
    /* Failed for good: more bytes are refused, nothing can be sent. */
    uint8_t junk[40] = {0};
    cr_assert_eq(dvm_secretstream_recv(&p->ss, junk, sizeof junk, &p->out), want);
    cr_assert_eq(dvm_secretstream_send(&p->ss, junk, 1, &p->out), DVM_ERR_STATE);
    cr_assert_not(dvm_secretstream_is_ready(&p->ss));
}

Test(secretstream, any_flipped_bit_in_a_message_ends_the_stream)
{
    for (size_t byte = 0; byte < 3 + 17 + 5; byte++) {
        peer a, b;
        open_pair(&a, &b);
        cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"hello", 5, &a.out), DVM_OK);
        a.out.data[byte] ^= 0x04;
        dvm_err e = pump(&a, &b, 1);
        if (byte < 3) {
            /* a changed length: the frame is now too short, too long (waits
             * for more), or authentication fails */
            if (e == DVM_OK) {
                cr_assert_eq(b.n_msgs, 0);
                /* it waits for bytes; the next frame completes it and fails MAC */
                cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"hello", 5, &a.out), DVM_OK);
                uint8_t *pad = calloc(1, 1 << 19);
                dvm_buf_append(&a.out, pad, 1 << 19);
                free(pad);
                e = pump(&a, &b, 4096);
            }
            cr_assert_neq(e, DVM_OK, "byte %zu", byte);
        } else {
            cr_assert_eq(e, DVM_ERR_CRYPTO, "byte %zu", byte);
        }
        cr_assert_eq(b.n_msgs, 0);
        expect_failed(&b, e);
        peer_free(&a);
        peer_free(&b);
    }
}

Test(secretstream, bad_lengths_are_rejected_at_the_prefix)
{
    peer a, b;
    /* A data frame shorter than its MAC. */
    open_pair(&a, &b);
    uint8_t short_frame[3 + 16] = {16, 0, 0};
    cr_assert_eq(dvm_secretstream_recv(&b.ss, short_frame, sizeof short_frame, &b.out), DVM_ERR_INVALID);
    expect_failed(&b, DVM_ERR_INVALID);
    peer_free(&a);
    peer_free(&b);
    /* An empty frame once open. */
    open_pair(&a, &b);
    uint8_t empty[3] = {0, 0, 0};
    cr_assert_eq(dvm_secretstream_recv(&b.ss, empty, 3, &b.out), DVM_ERR_INVALID);
    peer_free(&a);
    peer_free(&b);
    /* Over a configured limit: refused from the 3-byte prefix alone. */
    dvm_secretstream_options lim = {.max_message = 1000};
    peer_init(&a, true, 31, NULL);
    peer_init(&b, false, 32, &lim);
    connect_pair(&a, &b, (size_t)-1);
    uint8_t big[3] = {(uint8_t)(1017 & 0xff), (uint8_t)(1017 >> 8), 0}; /* plaintext 1000: accepted */
    cr_assert_eq(dvm_secretstream_recv(&b.ss, big, 3, &b.out), DVM_OK);
    peer_free(&a);
    peer_free(&b);
    peer_init(&a, true, 31, NULL);
    peer_init(&b, false, 32, &lim);
    connect_pair(&a, &b, (size_t)-1);
    uint8_t over[3] = {(uint8_t)(1018 & 0xff), (uint8_t)(1018 >> 8), 0}; /* plaintext 1001 */
    cr_assert_eq(dvm_secretstream_recv(&b.ss, over, 3, &b.out), DVM_ERR_TOO_LARGE);
    expect_failed(&b, DVM_ERR_TOO_LARGE);
    peer_free(&a);
    peer_free(&b);
}

Test(secretstream, handshake_phase_limits_and_garbage)
{
    /* A handshake frame over 65535 bytes. */
    peer a, b;
    peer_init(&b, false, 41, NULL);
    cr_assert_eq(dvm_secretstream_recv(&b.ss, (const uint8_t *)"x", 1, &b.out), DVM_ERR_STATE, "not started");
    cr_assert_eq(dvm_secretstream_start(&b.ss, &b.out), DVM_OK);
    cr_assert_eq(dvm_secretstream_start(&b.ss, &b.out), DVM_ERR_STATE);
    uint8_t huge[3] = {0x00, 0x00, 0x01};
    cr_assert_eq(dvm_secretstream_recv(&b.ss, huge, 3, &b.out), DVM_ERR_TOO_LARGE);
    expect_failed(&b, DVM_ERR_TOO_LARGE);
    peer_free(&b);

    /* Data sent before the handshake: nothing to send with yet. */
    peer_init(&a, true, 42, NULL);
    cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"x", 1, &a.out), DVM_ERR_STATE);
    peer_free(&a);

    /* A responder that gets a data frame in place of the third handshake
     * message; an initiator that gets garbage instead of the second. */
    peer_init(&a, true, 43, NULL);
    peer_init(&b, false, 44, NULL);
    cr_assert_eq(dvm_secretstream_start(&a.ss, &a.out), DVM_OK);
    cr_assert_eq(dvm_secretstream_start(&b.ss, &b.out), DVM_OK);
    cr_assert_eq(pump(&a, &b, 100), DVM_OK);
    uint8_t garbage[3 + 64];
    garbage[0] = 64;
    garbage[1] = garbage[2] = 0;
    fill_pattern(garbage + 3, 64, 1);
    cr_assert_eq(dvm_secretstream_recv(&b.ss, garbage, sizeof garbage, &b.out), DVM_ERR_CRYPTO);
    expect_failed(&b, DVM_ERR_CRYPTO);
    garbage[0] = 96;
    uint8_t g2[3 + 96] = {96, 0, 0};
    fill_pattern(g2 + 3, 96, 2);
    cr_assert_eq(dvm_secretstream_recv(&a.ss, g2, sizeof g2, &a.out), DVM_ERR_CRYPTO);
    expect_failed(&a, DVM_ERR_CRYPTO);
    peer_free(&a);
    peer_free(&b);
}

Test(secretstream, bad_header_is_rejected)
{
    /* Run the handshake, then corrupt the initiator's header (stream id or
     * its length) before the responder reads it. */
    for (int variant = 0; variant < 3; variant++) {
        peer a, b;
        peer_init(&a, true, 51, NULL);
        peer_init(&b, false, 52, NULL);
        cr_assert_eq(dvm_secretstream_start(&a.ss, &a.out), DVM_OK);
        cr_assert_eq(dvm_secretstream_start(&b.ss, &b.out), DVM_OK);
        cr_assert_eq(pump(&a, &b, 1000), DVM_OK);
        cr_assert_eq(pump(&b, &a, 1000), DVM_OK); /* a now wrote msg3 + header */
        cr_assert_eq(a.out.len, 3 + 64 + 3 + 56);
        uint8_t *hdr = a.out.data + 67;
        dvm_err want;
        if (variant == 0) {
            hdr[3 + 5] ^= 1; /* stream id */
            want = DVM_ERR_PROTO;
        } else if (variant == 1) {
            hdr[0] = 55; /* header one byte short */
            want = DVM_ERR_PROTO;
        } else {
            /* a data frame in place of the header */
            a.out.len = 67;
            cr_assert_eq(dvm_secretstream_send(&a.ss, (const uint8_t *)"early", 5, &a.out), DVM_OK);
            want = DVM_ERR_PROTO;
        }
        cr_assert_eq(pump(&a, &b, 1000), want, "variant %d", variant);
        expect_failed(&b, want);
        peer_free(&a);
        peer_free(&b);
    }
}

/* Streams started from a handshake done elsewhere (hyperdht's IK), against
 * JavaScript streams created with the same keys (opts.handshake). */
static void prehandshaken_side(bool initiator, size_t split)
{
    json_t *t = load_fixture("fixtures/vectors/noise/secretstream_prehandshaken.json");
    json_t *all = load_fixture("fixtures/vectors/noise/handshakes.json");
    json_t *v = json_array_get(all, (size_t)json_integer_value(json_object_get(t, "from_vector")));
    cr_assert(v);
    uint8_t iseed[32], rseed[32], tx[32], rx[32], hh[64];
    unhex_into(jstr(v, "initiator_static_seed"), iseed, 32);
    unhex_into(jstr(v, "responder_static_seed"), rseed, 32);
    unhex_into(jstr(v, initiator ? "initiator_tx" : "responder_tx"), tx, 32);
    unhex_into(jstr(v, initiator ? "initiator_rx" : "responder_rx"), rx, 32);
    unhex_into(jstr(v, "handshake_hash"), hh, 64);
    dvm_noise_keypair ik, rk;
    dvm_noise_keypair_from_seed(&ik, iseed);
    dvm_noise_keypair_from_seed(&rk, rseed);
    peer p;
    memset(&p, 0, sizeof p);
    p.rng = test_rng_make(&p.tr, 9);
    dvm_buf_init(&p.out, 0);
    cr_assert_eq(dvm_secretstream_init_from_handshake(&p.ss, initiator, tx, rx, hh,
                                                      initiator ? ik.public_key : rk.public_key,
                                                      initiator ? rk.public_key : ik.public_key, &p.rng, NULL,
                                                      &CBS, &p),
                 DVM_OK);
    cr_assert_eq(dvm_secretstream_start(&p.ss, &p.out), DVM_OK);
    cr_assert_eq(p.handshakes, 1);
    cr_assert_eq(p.out.len, 59);
    size_t ours_len, theirs_len;
    uint8_t *ours = concat_writes(json_object_get(t, initiator ? "initiator_writes" : "responder_writes"), &ours_len,
                                  NULL);
    uint8_t *theirs = concat_writes(json_object_get(t, initiator ? "responder_writes" : "initiator_writes"),
                                    &theirs_len, NULL);
    cr_assert_arr_eq(p.out.data, ours, 3 + 32, "our stream id header equals the JS one");
    for (size_t off = 0; off < theirs_len; off += split) {
        size_t n = theirs_len - off < split ? theirs_len - off : split;
        cr_assert_eq(dvm_secretstream_recv(&p.ss, theirs + off, n, &p.out), DVM_OK, "%s",
                     dvm_secretstream_error(&p.ss));
    }
    check_messages(&p, json_object_get(t, initiator ? "responder_messages" : "initiator_messages"));
    free(ours);
    free(theirs);
    peer_free(&p);
    json_decref(t);
    json_decref(all);
}

Test(secretstream, prehandshaken_streams_read_javascript_ones)
{
    size_t splits[] = {1, 7, (size_t)-1};
    for (unsigned i = 0; i < 3; i++) {
        prehandshaken_side(true, splits[i]);
        prehandshaken_side(false, splits[i]);
    }
}

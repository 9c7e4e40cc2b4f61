#include "live/pcap_corpus.h"
#include "common/err.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One direction of a TCP connection. */
struct segment {
    uint32_t seq;
    uint8_t *data;
    size_t len;
};

struct flow {
    uint8_t key[37]; /* family, src addr(16), dst addr(16), sport(2), dport(2) */
    bool have_isn;
    uint32_t next_seq;    /* next expected sequence number */
    uint8_t *bytes;
    size_t len, cap;
    struct segment pending[PCAP_CORPUS_MAX_PENDING];
    size_t npending;
};

struct ctx {
    struct flow **flows;
    size_t nflows;
    unsigned port;
    pcap_corpus_stats *st;
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct flow *find_flow(struct ctx *c, const uint8_t key[37])
{
    for (size_t i = 0; i < c->nflows; i++)
        if (memcmp(c->flows[i]->key, key, 37) == 0)
            return c->flows[i];
    if (c->nflows >= PCAP_CORPUS_MAX_STREAMS)
        return NULL;
    struct flow *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    struct flow **nf = realloc(c->flows, (c->nflows + 1) * sizeof *nf);
    if (!nf) {
        free(f);
        return NULL;
    }
    memcpy(f->key, key, 37);
    c->flows = nf;
    c->flows[c->nflows++] = f;
    return f;
}

static void flow_append(struct flow *f, const uint8_t *p, size_t n, pcap_corpus_stats *st)
{
    if (f->len + n > PCAP_CORPUS_MAX_STREAM_BYTES) {
        st->dropped++;
        n = PCAP_CORPUS_MAX_STREAM_BYTES - f->len;
    }
    if (n == 0)
        return;
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap *= 2;
        uint8_t *b = realloc(f->bytes, cap);
        if (!b) {
            st->dropped++;
            return;
        }
        f->bytes = b;
        f->cap = cap;
    }
    memcpy(f->bytes + f->len, p, n);
    f->len += n;
}

/* Deliver the in-order part of segment (seq, p, n): trims retransmitted bytes
 * already delivered, queues segments from the future. */
static void flow_segment(struct flow *f, uint32_t seq, const uint8_t *p, size_t n,
                         pcap_corpus_stats *st)
{
    int32_t ahead = (int32_t)(seq - f->next_seq);
    if (ahead < 0) { /* (partial) retransmission */
        size_t old = (size_t)(-(int64_t)ahead);
        if (old >= n)
            return;
        p += old;
        n -= old;
        seq = f->next_seq;
        ahead = 0;
    }
    if (ahead > 0) {
        if (f->npending >= PCAP_CORPUS_MAX_PENDING) {
            st->dropped++;
            return;
        }
        uint8_t *copy = malloc(n);
        if (!copy) {
            st->dropped++;
            return;
        }
        memcpy(copy, p, n);
        f->pending[f->npending++] = (struct segment){seq, copy, n};
        return;
    }
    flow_append(f, p, n, st);
    f->next_seq = seq + (uint32_t)n;
    /* Drain queued segments that have become in order. Each pass removes at
     * least one entry or stops, so this is bounded by npending^2. */
    bool progress = true;
    while (progress) {
        progress = false;
        for (size_t i = 0; i < f->npending; i++) {
            struct segment s = f->pending[i];
            int32_t d = (int32_t)(s.seq - f->next_seq);
            if (d > 0)
                continue;
            f->pending[i] = f->pending[--f->npending];
            size_t old = (size_t)(-(int64_t)d);
            if (old < s.len) {
                flow_append(f, s.data + old, s.len - old, st);
                f->next_seq = s.seq + (uint32_t)s.len;
            }
            free(s.data);
            progress = true;
            break;
        }
    }
}

static void handle_tcp(struct ctx *c, int family, const uint8_t *src, const uint8_t *dst,
                       size_t alen, const uint8_t *tcp, size_t len)
{
    if (len < 20)
        return;
    size_t off = (size_t)(tcp[12] >> 4) * 4;
    if (off < 20 || off > len)
        return;
    uint16_t sport = be16(tcp), dport = be16(tcp + 2);
    if (c->port && sport != c->port && dport != c->port)
        return;
    uint32_t seq = be32(tcp + 4);
    uint8_t flags = tcp[13];
    uint8_t key[37] = {0};
    key[0] = (uint8_t)family;
    memcpy(key + 1, src, alen);
    memcpy(key + 17, dst, alen);
    memcpy(key + 33, tcp, 4); /* sport, dport */
    size_t n = len - off;
    if (n == 0 && !(flags & 0x02))
        return;
    struct flow *f = find_flow(c, key);
    if (!f) {
        c->st->dropped++;
        return;
    }
    if (!f->have_isn) {
        f->have_isn = true;
        /* SYN consumes one sequence number; otherwise start mid-stream. */
        f->next_seq = (flags & 0x02) ? seq + 1 : seq;
    }
    if (n == 0)
        return;
    c->st->tcp_segments++;
    flow_segment(f, seq, tcp + off, n, c->st);
}

static void handle_ip(struct ctx *c, const uint8_t *p, size_t len)
{
    if (len < 1)
        return;
    int v = p[0] >> 4;
    if (v == 4) {
        if (len < 20)
            return;
        size_t ihl = (size_t)(p[0] & 0x0f) * 4;
        size_t tot = be16(p + 2);
        if (ihl < 20 || tot < ihl || tot > len)
            tot = len; /* truncated capture or TSO: use what we have */
        if (ihl > tot || p[9] != 6)
            return;
        if ((be16(p + 6) & 0x3fff) != 0) /* fragments are not reassembled */
            return;
        handle_tcp(c, 4, p + 12, p + 16, 4, p + ihl, tot - ihl);
    } else if (v == 6) {
        if (len < 40 || p[6] != 6) /* no extension headers */
            return;
        size_t pl = be16(p + 4);
        if (40 + pl > len)
            pl = len - 40;
        handle_tcp(c, 6, p + 8, p + 24, 16, p + 40, pl);
    }
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes, int dlt)
{
    struct ctx *c = (struct ctx *)user;
    size_t len = h->caplen;
    c->st->packets++;
    switch (dlt) {
    case DLT_EN10MB: {
        if (len < 14)
            return;
        size_t off = 12;
        uint16_t et = be16(bytes + off);
        while ((et == 0x8100 || et == 0x88a8) && off + 6 <= len) { /* VLAN tags */
            off += 4;
            et = be16(bytes + off);
        }
        off += 2;
        if ((et == 0x0800 || et == 0x86dd) && off <= len)
            handle_ip(c, bytes + off, len - off);
        return;
    }
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
    case DLT_IPV6:
#endif
        handle_ip(c, bytes, len);
        return;
    case DLT_NULL:
    case DLT_LOOP:
        if (len > 4)
            handle_ip(c, bytes + 4, len - 4);
        return;
    case DLT_LINUX_SLL:
        if (len > 16)
            handle_ip(c, bytes + 16, len - 16);
        return;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
        if (len > 20)
            handle_ip(c, bytes + 20, len - 20);
        return;
#endif
    default:
        c->st->dropped++;
    }
}

struct loop_arg {
    struct ctx *c;
    int dlt;
};

static void loop_cb(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct loop_arg *a = (struct loop_arg *)user;
    on_packet((u_char *)a->c, h, bytes, a->dlt);
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    int rc = (w == n) ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int emit_lines(const struct flow *f, const char *out_dir, pcap_corpus_stats *st)
{
    size_t start = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->bytes[i] != '\n')
            continue;
        size_t n = i + 1 - start;
        if (n > 1 && n <= PCAP_CORPUS_MAX_LINE) {
            uint8_t h[crypto_hash_sha256_BYTES];
            crypto_hash_sha256(h, f->bytes + start, n);
            char hex[17];
            sodium_bin2hex(hex, sizeof hex, h, 8);
            char path[4096];
            snprintf(path, sizeof path, "%s/msg-%s.ndjson", out_dir, hex);
            struct stat sb;
            if (stat(path, &sb) != 0) {
                if (write_file(path, f->bytes + start, n) != 0)
                    return -1;
                st->messages++;
            }
        }
        start = i + 1;
    }
    return 0;
}

int pcap_corpus_extract(const char *in_path, const char *out_dir, unsigned port,
                        pcap_corpus_stats *stats, char *errbuf, size_t errlen)
{
    pcap_corpus_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    char perr[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(in_path, perr);
    if (!p) {
        dvm_reasonf(errbuf, errlen, "cannot read capture %s: %s", in_path, perr);
        return -1;
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        dvm_reasonf(errbuf, errlen, "cannot create %s: %s", out_dir, strerror(errno));
        pcap_close(p);
        return -1;
    }
    struct ctx c = {.port = port, .st = stats};
    struct loop_arg a = {&c, pcap_datalink(p)};
    int rc = pcap_loop(p, -1, loop_cb, (u_char *)&a);
    if (rc == PCAP_ERROR) {
        dvm_reasonf(errbuf, errlen, "error reading %s: %s", in_path, pcap_geterr(p));
        pcap_close(p);
        rc = -1;
        goto out;
    }
    pcap_close(p);
    rc = 0;
    for (size_t i = 0; i < c.nflows; i++) {
        struct flow *f = c.flows[i];
        if (f->len == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/stream-%04zu.bin", out_dir, stats->streams);
        if (write_file(path, f->bytes, f->len) != 0 || emit_lines(f, out_dir, stats) != 0) {
            dvm_reasonf(errbuf, errlen, "cannot write into %s: %s", out_dir, strerror(errno));
            rc = -1;
            goto out;
        }
        stats->streams++;
    }
out:
    for (size_t i = 0; i < c.nflows; i++) {
        for (size_t j = 0; j < c.flows[i]->npending; j++)
            free(c.flows[i]->pending[j].data);
        free(c.flows[i]->bytes);
        free(c.flows[i]);
    }
    free(c.flows);
    return rc;
}

/* dvmstream — turn packet captures into fuzz corpora (issue: fuzzing).
 *
 * Reads a pcap or pcapng file (libpcap: pcap_open_offline), reassembles the
 * TCP byte streams it carries (IPv4 and IPv6; link types Ethernet, raw IP,
 * BSD loopback, Linux cooked v1/v2), and writes:
 *   OUTDIR/stream-NNNN.bin  the bytes of each direction of each TCP
 *                           connection, in sequence order (corpus for the
 *                           framer harness, fuzz_wire);
 *   OUTDIR/msg-HASH.ndjson  each distinct newline-terminated line seen in any
 *                           stream (HASH = first 16 hex chars of its SHA-256),
 *                           for the message-decoder harnesses.
 * Works on `dvm sim --pcap` files and on tcpdump captures of a loopback
 * session in plaintext. Encrypted SecretStream captures yield stream files
 * only (their lines are ciphertext).
 *
 * Bounds: at most PCAP_CORPUS_MAX_STREAMS directions, PCAP_CORPUS_MAX_STREAM_BYTES
 * per direction (the rest is dropped), PCAP_CORPUS_MAX_PENDING out-of-order
 * segments per direction, lines longer than PCAP_CORPUS_MAX_LINE are skipped. */
#ifndef DVM_LIVE_PCAP_CORPUS_H
#define DVM_LIVE_PCAP_CORPUS_H

#include <stddef.h>

#define PCAP_CORPUS_MAX_STREAMS 4096
#define PCAP_CORPUS_MAX_STREAM_BYTES (16u << 20)
#define PCAP_CORPUS_MAX_PENDING 256
#define PCAP_CORPUS_MAX_LINE (1u << 20)

typedef struct pcap_corpus_stats {
    size_t packets;      /* packets read from the capture */
    size_t tcp_segments; /* TCP segments carrying payload */
    size_t streams;      /* stream files written */
    size_t messages;     /* distinct message files written */
    size_t dropped;      /* segments dropped (bounds, gaps, unknown link) */
} pcap_corpus_stats;

/* Read capture `in_path` and write corpus files into directory `out_dir`
 * (created if missing; existing files with the same name are overwritten).
 * `port` != 0 keeps only TCP segments with that source or destination port.
 * Returns 0 on success; -1 with a one-line reason in errbuf (size errlen)
 * when the file cannot be opened/read or the directory cannot be written. */
int pcap_corpus_extract(const char *in_path, const char *out_dir, unsigned port,
                        pcap_corpus_stats *stats, char *errbuf, size_t errlen);

#endif

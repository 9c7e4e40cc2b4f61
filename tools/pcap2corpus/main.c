/* pcap2corpus — write fuzz corpus files from a capture of dvm traffic.
 * See tools/live/pcap_corpus.h for what is written. */
#include <stdio.h>
#include <string.h>

#include "dvm/cli.h"
#include "live/pcap_corpus.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pcap2corpus [--port N] CAPTURE OUTDIR\n"
            "\n"
            "Reassemble the TCP streams of CAPTURE (pcap or pcapng, e.g. from\n"
            "`dvm sim --pcap` or a tcpdump of a plaintext loopback session) and\n"
            "write OUTDIR/stream-NNNN.bin per direction and OUTDIR/msg-HASH.ndjson\n"
            "per distinct NDJSON line, ready to add to fixtures/corpus/<harness>/.\n"
            "--port N keeps only segments to or from TCP port N.\n");
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    int i = 1;
    if (dvm_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
        uint64_t v;
        if (!dvm_parse_u64(argv[i + 1], 65535, &v)) {
            fprintf(stderr, "pcap2corpus: --port must be 0..65535\n");
            return 2;
        }
        port = (unsigned)v;
        i += 2;
    }
    if (argc - i != 2) {
        usage(stderr);
        return 2;
    }
    char err[512];
    pcap_corpus_stats st;
    if (pcap_corpus_extract(argv[i], argv[i + 1], port, &st, err, sizeof err) != 0) {
        fprintf(stderr, "pcap2corpus: %s\n", err);
        return 1;
    }
    printf("%zu packets, %zu TCP segments, %zu streams, %zu messages, %zu dropped\n",
           st.packets, st.tcp_segments, st.streams, st.messages, st.dropped);
    return 0;
}

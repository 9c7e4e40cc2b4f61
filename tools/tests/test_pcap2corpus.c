/* pcap2corpus: captures written with libpcap are reassembled into the exact
 * byte streams and distinct NDJSON lines. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "live/pcap_corpus.h"
#include "spawn_run.h"

struct cap {
    pcap_t *p;
    pcap_dumper_t *d;
    int linktype;
};

/* Write one IPv4/TCP packet (optionally behind an Ethernet header). */
static void put_tcp(struct cap *c, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                    uint32_t seq, uint8_t flags, const char *payload, size_t n)
{
    uint8_t pkt[2048] = {0};
    size_t off = 0;
    if (c->linktype == DLT_EN10MB) {
        pkt[12] = 0x08; /* IPv4 */
        off = 14;
    }
    uint8_t *ip = pkt + off, *tcp = ip + 20;
    size_t tot = 20 + 20 + n;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    for (int i = 0; i < 4; i++) {
        ip[12 + i] = (uint8_t)(src >> (24 - 8 * i));
        ip[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
    }
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    for (int i = 0; i < 4; i++)
        tcp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    memcpy(tcp + 20, payload, n);
    struct pcap_pkthdr h = {0};
    h.caplen = h.len = (bpf_u_int32)(off + tot);
    pcap_dump((u_char *)c->d, &h, pkt);
}

static void cap_open(struct cap *c, const char *path, int linktype)
{
    c->linktype = linktype;
    c->p = pcap_open_dead(linktype, 65535);
    cr_assert_not_null(c->p);
    c->d = pcap_dump_open(c->p, path);
    cr_assert_not_null(c->d, "%s", pcap_geterr(c->p));
}

static void cap_close(struct cap *c)
{
    pcap_dump_close(c->d);
    pcap_close(c->p);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing %s", path);
    static char buf[65536];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static size_t count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void tmpdir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/dvm-pcap-test-XXXXXX");
    cr_assert_not_null(mkdtemp(out));
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void reassembles_with(int linktype)
{
    char dir[64], cap_path[128], out[160];
    tmpdir(dir, sizeof dir);
    snprintf(cap_path, sizeof cap_path, "%s/in.pcap", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    struct cap c;
    cap_open(&c, cap_path, linktype);
    const uint32_t A = 0x0a000001, B = 0x0a000002;
    const char *l1 = "{\"type\":\"request\",\"id\":\"j1\"}\n";
    const char *l2 = "{\"type\":\"stop\",\"id\":\"j1\"}\n";
    put_tcp(&c, A, B, 40000, 7000, 999, 0x02, "", 0); /* SYN, isn 999 */
    /* l1 split in two segments, the second arriving first (out of order). */
    put_tcp(&c, A, B, 40000, 7000, 1000 + 10, 0x18, l1 + 10, strlen(l1) - 10);
    put_tcp(&c, A, B, 40000, 7000, 1000, 0x18, l1, 10);
    /* a retransmission of the first 10 bytes changes nothing */
    put_tcp(&c, A, B, 40000, 7000, 1000, 0x18, l1, 10);
    put_tcp(&c, A, B, 40000, 7000, (uint32_t)(1000 + strlen(l1)), 0x18, l2, strlen(l2));
    /* the same line again: one message file, not two */
    put_tcp(&c, A, B, 40000, 7000, (uint32_t)(1000 + strlen(l1) + strlen(l2)), 0x18, l2, strlen(l2));
    /* other direction, and traffic on another port filtered out below */
    put_tcp(&c, B, A, 7000, 40000, 5000, 0x18, "{\"type\":\"accepted\",\"id\":\"j1\"}\n", 31);
    put_tcp(&c, A, B, 40001, 9999, 1, 0x18, "noise\n", 6);
    cap_close(&c);

    pcap_corpus_stats st;
    char err[256];
    cr_assert_eq(pcap_corpus_extract(cap_path, out, 7000, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.streams, 2);
    cr_assert_eq(st.messages, 3, "messages %zu", st.messages);
    cr_assert_eq(count_prefix(out, "msg-"), 3);
    char want[256], path[256];
    snprintf(want, sizeof want, "%s%s%s", l1, l2, l2);
    snprintf(path, sizeof path, "%s/stream-0000.bin", out);
    size_t n;
    char *got = slurp(path, &n);
    cr_assert_eq(n, strlen(want));
    cr_assert(memcmp(got, want, n) == 0);
    rmtree(out);
    rmtree(dir);
}

Test(pcap2corpus, raw_ip_reassembly) { reassembles_with(DLT_RAW); }
Test(pcap2corpus, ethernet_reassembly) { reassembles_with(DLT_EN10MB); }

Test(pcap2corpus, missing_file_is_a_clear_error)
{
    char err[256] = "";
    cr_assert_eq(pcap_corpus_extract("/nonexistent/x.pcap", "/tmp/none", 0, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot read capture") != NULL, "%s", err);
}

Test(pcap2corpus, cli_runs)
{
    char dir[64], cap_path[128], cmd[512];
    tmpdir(dir, sizeof dir);
    snprintf(cap_path, sizeof cap_path, "%s/in.pcap", dir);
    struct cap c;
    cap_open(&c, cap_path, DLT_RAW);
    put_tcp(&c, 1, 2, 1, 2, 7, 0x18, "{\"type\":\"stop\",\"id\":\"x\"}\n", 25);
    cap_close(&c);
    const char *bin = getenv("DVM_BIN");
    cr_assert_not_null(bin);
    char out[160], missing[160];
    snprintf(cmd, sizeof cmd, "%s/pcap2corpus", bin);
    snprintf(out, sizeof out, "%s/out", dir);
    char *ok_args[] = {cmd, cap_path, out, NULL};
    spawn_result r = spawn_run(NULL, ok_args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    spawn_result_free(&r);
    cr_assert_eq(count_prefix(out, "msg-"), 1);
    cr_assert_eq(count_prefix(out, "stream-"), 1);
    snprintf(missing, sizeof missing, "%s/missing.pcap", dir);
    char *bad_args[] = {cmd, missing, out, NULL};
    r = spawn_run(NULL, bad_args);
    cr_assert_neq(r.code, 0);
    spawn_result_free(&r);
    rmtree(out);
    rmtree(dir);
}

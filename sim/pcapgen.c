#include "pcapgen.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

size_t sim_pcap_segment(uint8_t *out, const sim_tcp_tuple *tp, uint32_t seq, uint32_t ack,
                        uint8_t flags, uint16_t ip_id, const uint8_t *payload, size_t len)
{
    if (len > SIM_PCAP_MSS)
        len = SIM_PCAP_MSS;
    uint8_t *ip = out, *tcp = out + 20;
    size_t total = SIM_PCAP_HDR + len;
    memset(out, 0, SIM_PCAP_HDR);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)total);
    put16(ip + 4, ip_id);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 6; /* TCP */
    put32(ip + 12, tp->src_ip);
    put32(ip + 16, tp->dst_ip);
    put16(ip + 10, fold(sum16(ip, 20, 0)));

    put16(tcp + 0, tp->src_port);
    put16(tcp + 2, tp->dst_port);
    put32(tcp + 4, seq);
    put32(tcp + 8, (flags & SIM_TCP_ACK) ? ack : 0);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    if (len)
        memcpy(tcp + 20, payload, len);
    uint8_t pseudo[12];
    put32(pseudo, tp->src_ip);
    put32(pseudo + 4, tp->dst_ip);
    pseudo[8] = 0;
    pseudo[9] = 6;
    put16(pseudo + 10, (uint16_t)(20 + len));
    put16(tcp + 16, fold(sum16(tcp, 20 + len, sum16(pseudo, 12, 0))));
    return total;
}

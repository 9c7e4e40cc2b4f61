/* dvmstream simulator — synthetic IPv4/TCP packets for --pcap.
 *
 * Each virtual peer has an IPv4 address (10.0.0.0/8, see sim_node_ip) and
 * each virtual connection a TCP 4-tuple; sim_pcap_segment builds one raw
 * IPv4 packet (RFC 791 header with checksum, RFC 793 header with checksum
 * over the RFC 793 pseudo-header) carrying up to SIM_PCAP_MSS payload bytes.
 * Pure: bytes out only. The packet sink (sinks.h) writes them with libpcap
 * (LINKTYPE_RAW), so tshark shows the NDJSON payloads between hosts. */
#ifndef DVM_SIM_PCAPGEN_H
#define DVM_SIM_PCAPGEN_H

#include <stddef.h>
#include <stdint.h>

#define SIM_PCAP_MSS 1460
#define SIM_PCAP_HDR 40 /* IPv4 20 + TCP 20 */

enum { SIM_TCP_FIN = 0x01, SIM_TCP_SYN = 0x02, SIM_TCP_RST = 0x04, SIM_TCP_PSH = 0x08, SIM_TCP_ACK = 0x10 };

typedef struct sim_tcp_tuple {
    uint32_t src_ip, dst_ip; /* host order */
    uint16_t src_port, dst_port;
} sim_tcp_tuple;

/* Write one packet into out (room for SIM_PCAP_HDR + len bytes); returns
 * its length. len must be <= SIM_PCAP_MSS. seq/ack in host order; ip_id is
 * the IPv4 identification field. */
size_t sim_pcap_segment(uint8_t *out, const sim_tcp_tuple *tp, uint32_t seq, uint32_t ack,
                        uint8_t flags, uint16_t ip_id, const uint8_t *payload, size_t len);

#endif

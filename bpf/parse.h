/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing: Ethernet (+ one 802.1Q tag), IPv4, IPv6, TCP, UDP and the
 * inner header of ICMP "fragmentation needed" / ICMPv6 "packet too big".
 * Every read is bounds-checked against data_end and against the IP header's
 * own length (an ICMP error's quoted header too: bytes past the total length
 * are link padding, not covered by the ICMP checksum), so truncated or lying
 * headers end as PARSE_MALFORMED. */
#ifndef GOVS_PARSE_H
#define GOVS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "structs.h"

#define ETH_P_8021Q_BE bpf_htons(0x8100)
#define ETH_P_IP_BE bpf_htons(ETH_P_IP)
#define ETH_P_IPV6_BE bpf_htons(ETH_P_IPV6)

#define IP_MF 0x2000
#define IP_DF 0x4000
#define IP_OFFSET 0x1fff

#define TCP_FL_FIN 0x01
#define TCP_FL_SYN 0x02
#define TCP_FL_RST 0x04
#define TCP_FL_ACK 0x10

/* ICMP and ICMPv6 share this layout for the first 8 bytes; defined here
 * because linux/icmp.h drags in libc socket headers. */
struct icmp_hdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be32 rest;
};

#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMPV6_PKT_TOOBIG 2

struct frag_hdr6 {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 id;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_MALFORMED,
	PARSE_V6_EXT,
	PARSE_OTHER, /* well-formed, but nothing a service could match (ICMP echo, NDP, ...) */
};

enum frag_kind {
	FRAG_NONE = 0,
	FRAG_FIRST = 1,
	FRAG_LATER = 2,
};

struct pkt {
	struct flow flow; /* for ICMP PTB: the tracked flow, i.e. the inner packet reversed */
	__u32 l3_off;     /* 14, or 18 with a VLAN tag */
	__u32 ip_len;     /* whole IP packet per its header */
	__u32 ip_id;      /* fragment identification (network order) */
	__u8 tcp_flags;
	__u8 frag; /* enum frag_kind */
	__u8 icmp; /* 1: ICMP error carrying a flow */
	__u8 tos;
	__u8 df; /* IPv4 don't-fragment bit set (always for IPv6: routers never fragment it) */
	__u8 pad;
	__u16 l4_off;       /* TCP/UDP header, or the ICMP header of an error */
	__u16 inner_l4_off; /* ICMP error: the embedded packet's ports (its IP header is at l4_off + 8) */
	__u16 pad2;
};

static __always_inline void copy4(__u8 *dst, const void *src)
{
	__builtin_memcpy(dst, src, 4);
}

static __always_inline void copy16(__u8 *dst, const void *src)
{
	__builtin_memcpy(dst, src, 16);
}

static __always_inline int addr16_eq(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Reads the two ports at l4 (TCP and UDP both start with them). */
static __always_inline int read_ports(void *l4, void *data_end, void *ip_end, __be16 *sport, __be16 *dport)
{
	__be16 *ports = l4;
	if ((void *)(ports + 2) > data_end || (void *)(ports + 2) > ip_end)
		return -1;
	*sport = ports[0];
	*dport = ports[1];
	return 0;
}

/* The inner packet of an ICMP error was sent by a real server (source VIP)
 * towards the client, so the tracked flow is that packet reversed. */
static __always_inline int parse_icmp4_inner(void *inner, void *data_end, void *ip_end, struct pkt *p)
{
	struct iphdr *iph = inner;
	if ((void *)(iph + 1) > data_end || (void *)(iph + 1) > ip_end)
		return PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return PARSE_OTHER;
	/* The error must be addressed to the packet's sender (the VIP). */
	if (iph->saddr != *(__be32 *)p->flow.dst)
		return PARSE_OTHER;
	void *l4 = inner + (iph->ihl & 0xf) * 4;
	__be16 sport, dport;
	if (read_ports(l4, data_end, ip_end, &sport, &dport))
		return PARSE_MALFORMED;
	p->inner_l4_off = p->l4_off + sizeof(struct icmp_hdr) + (iph->ihl & 0xf) * 4;
	copy4(p->flow.src, &iph->daddr);
	copy4(p->flow.dst, &iph->saddr);
	p->flow.sport = dport;
	p->flow.dport = sport;
	p->flow.proto = iph->protocol;
	p->icmp = 1;
	return PARSE_OK;
}

static __always_inline int parse_icmp6_inner(void *inner, void *data_end, void *ip_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = inner;
	if ((void *)(ip6 + 1) > data_end || (void *)(ip6 + 1) > ip_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
		return PARSE_OTHER;
	if (!addr16_eq(&ip6->saddr, p->flow.dst))
		return PARSE_OTHER;
	__be16 sport, dport;
	if (read_ports(ip6 + 1, data_end, ip_end, &sport, &dport))
		return PARSE_MALFORMED;
	p->inner_l4_off = p->l4_off + sizeof(struct icmp_hdr) + sizeof(*ip6);
	copy16(p->flow.src, &ip6->daddr);
	copy16(p->flow.dst, &ip6->saddr);
	p->flow.sport = dport;
	p->flow.dport = sport;
	p->flow.proto = ip6->nexthdr;
	p->icmp = 1;
	return PARSE_OK;
}

static __always_inline int parse_l4(void *l4, void *data_end, void *ip_end, __u8 proto, struct pkt *p)
{
	switch (proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end || (void *)(tcp + 1) > ip_end)
			return PARSE_MALFORMED;
		if (tcp->doff < 5)
			return PARSE_MALFORMED;
		p->flow.sport = tcp->source;
		p->flow.dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		return PARSE_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end || (void *)(udp + 1) > ip_end)
			return PARSE_MALFORMED;
		p->flow.sport = udp->source;
		p->flow.dport = udp->dest;
		return PARSE_OK;
	}
	}
	return PARSE_OTHER;
}

static __always_inline int parse_ipv4(void *l3, void *data_end, struct pkt *p)
{
	struct iphdr *iph = l3;
	if ((void *)(iph + 1) > data_end)
		return PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	__u32 hlen = (iph->ihl & 0xf) * 4;
	__u32 tot = bpf_ntohs(iph->tot_len) & 0xffff;
	if (tot < hlen || l3 + tot > data_end)
		return PARSE_MALFORMED;
	void *ip_end = l3 + tot;
	p->flow.family = FAMILY_V4;
	p->flow.proto = iph->protocol;
	p->ip_len = tot;
	p->ip_id = iph->id;
	p->tos = iph->tos;
	copy4(p->flow.src, &iph->saddr);
	copy4(p->flow.dst, &iph->daddr);

	__u16 frag = bpf_ntohs(iph->frag_off);
	p->df = !!(frag & IP_DF);
	if (frag & IP_OFFSET) {
		/* No transport header here; the fragment table decides. */
		p->frag = FRAG_LATER;
		return PARSE_OK;
	}
	if (frag & IP_MF)
		p->frag = FRAG_FIRST;

	void *l4 = l3 + hlen;
	p->l4_off = p->l3_off + hlen;
	if (iph->protocol == IPPROTO_ICMP) {
		struct icmp_hdr *icmp = l4;
		if ((void *)(icmp + 1) > data_end || (void *)(icmp + 1) > ip_end)
			return PARSE_MALFORMED;
		if (icmp->type != ICMP_DEST_UNREACH || icmp->code != ICMP_FRAG_NEEDED || p->frag)
			return PARSE_OTHER;
		return parse_icmp4_inner(icmp + 1, data_end, ip_end, p);
	}
	return parse_l4(l4, data_end, ip_end, iph->protocol, p);
}

static __always_inline int parse_ipv6(void *l3, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	__u32 tot = (bpf_ntohs(ip6->payload_len) & 0xffff) + sizeof(*ip6);
	if (l3 + tot > data_end)
		return PARSE_MALFORMED;
	void *ip_end = l3 + tot;
	p->flow.family = FAMILY_V6;
	p->df = 1;
	p->flow.proto = ip6->nexthdr;
	p->ip_len = tot;
	p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	copy16(p->flow.src, &ip6->saddr);
	copy16(p->flow.dst, &ip6->daddr);

	void *l4 = ip6 + 1;
	p->l4_off = p->l3_off + sizeof(*ip6);
	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return parse_l4(l4, data_end, ip_end, ip6->nexthdr, p);
	case IPPROTO_ICMPV6: {
		struct icmp_hdr *icmp = l4;
		if ((void *)(icmp + 1) > data_end || (void *)(icmp + 1) > ip_end)
			return PARSE_MALFORMED;
		if (icmp->type != ICMPV6_PKT_TOOBIG)
			return PARSE_OTHER;
		return parse_icmp6_inner(icmp + 1, data_end, ip_end, p);
	}
	case IPPROTO_FRAGMENT: {
		/* Only a fragment header directly followed by TCP/UDP. */
		struct frag_hdr6 *fh = l4;
		if ((void *)(fh + 1) > data_end || (void *)(fh + 1) > ip_end)
			return PARSE_MALFORMED;
		if (fh->nexthdr != IPPROTO_TCP && fh->nexthdr != IPPROTO_UDP)
			return PARSE_V6_EXT;
		p->flow.proto = fh->nexthdr;
		p->ip_id = fh->id;
		if (bpf_ntohs(fh->frag_off) & 0xfff8) {
			p->frag = FRAG_LATER;
			return PARSE_OK;
		}
		p->frag = FRAG_FIRST;
		p->l4_off += sizeof(*fh);
		return parse_l4(fh + 1, data_end, ip_end, fh->nexthdr, p);
	}
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return PARSE_V6_EXT;
	}
	return PARSE_OTHER;
}

static __always_inline int parse_packet(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_NOT_IP;
	__be16 proto = eth->h_proto;
	__u32 off = sizeof(*eth);
	if (proto == ETH_P_8021Q_BE) {
		__be16 *tag = (void *)(eth + 1);
		if ((void *)(tag + 2) > data_end)
			return PARSE_NOT_IP;
		proto = tag[1];
		off += 4;
	}
	p->l3_off = off;
	if (proto == ETH_P_IP_BE)
		return parse_ipv4(data + off, data_end, p);
	if (proto == ETH_P_IPV6_BE)
		return parse_ipv6(data + off, data_end, p);
	return PARSE_NOT_IP;
}

#endif

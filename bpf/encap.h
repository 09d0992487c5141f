/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding rewrites: DR (MAC addresses only) and TUN (IP-in-IP,
 * IPv6-in-IPv6, and the mixed 4-in-6 / 6-in-4 cases), plain or in GUE
 * (UDP to the real server's port, a 4-byte GUE header naming the inner
 * protocol, no UDP checksum: IPVS's "tunnel type gue" with nocsum). */
#ifndef GOVS_ENCAP_H
#define GOVS_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "structs.h"
#include "parse.h"
#include "csum.h"

#define TUN_TTL 64
#define GUE_LEN (8 + 4) /* UDP header + GUE header (version 0, no options) */

/* write_gue fills the UDP and GUE headers at l4. The source port, from
 * the client's, spreads flows over the receiver's queues (RSS), as IPVS's
 * udp_flow_src_port does with a hash. */
static __always_inline void write_gue(__u8 *l4, const struct pkt *p, const struct real *r, __u8 inner_proto)
{
	__u16 *udp = (__u16 *)l4;
	udp[0] = p->flow.sport | bpf_htons(0xc000);
	udp[1] = r->port;
	udp[2] = bpf_htons(p->ip_len + GUE_LEN);
	udp[3] = 0;
	l4[8] = 0; /* version 0, C 0, hlen 0 */
	l4[9] = inner_proto;
	l4[10] = 0;
	l4[11] = 0;
}

static __always_inline int dr_rewrite(struct xdp_md *ctx, const struct real *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	return 0;
}

/* Writes the Ethernet header (keeping a VLAN tag) in front of the outer IP
 * header and returns a pointer to where the outer header starts, or NULL. */
static __always_inline void *write_l2(struct xdp_md *ctx, const struct real *r, int vlan, __be16 vlan_tci,
				      __be16 proto, __u32 outer_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if (vlan) {
		if (data + sizeof(*eth) + 4 + outer_len > data_end)
			return NULL;
		__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
		eth->h_proto = ETH_P_8021Q_BE;
		__be16 *tag = (void *)(eth + 1);
		tag[0] = vlan_tci;
		tag[1] = proto;
		return data + sizeof(*eth) + 4;
	}
	if (data + sizeof(*eth) + outer_len > data_end)
		return NULL;
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	eth->h_proto = proto;
	return data + sizeof(*eth);
}

/* Encapsulates the IP packet described by p towards r->addr. The inner
 * packet is left byte for byte as received. */
static __always_inline int tun_encap(struct xdp_md *ctx, const struct pkt *p, const struct real *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int vlan = p->l3_off != sizeof(struct ethhdr);
	__be16 vlan_tci = 0;
	if (vlan) {
		__be16 *tag = data + sizeof(struct ethhdr);
		if ((void *)(tag + 2) > data_end)
			return -1;
		vlan_tci = tag[0];
	}
	__u8 inner_proto = p->flow.family == FAMILY_V6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	int gue = r->flags & REAL_F_GUE;
	__u32 extra = gue ? GUE_LEN : 0;
	__u8 next = gue ? IPPROTO_UDP : inner_proto;

	if (r->flags & REAL_F_V6) {
		if (p->ip_len + extra > 0xffff)
			return -1;
		if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct ipv6hdr) + extra)))
			return -1;
		struct ipv6hdr *ip6 = write_l2(ctx, r, vlan, vlan_tci, ETH_P_IPV6_BE, sizeof(struct ipv6hdr) + GUE_LEN * !!gue);
		if (!ip6)
			return -1;
		__u32 vtc = (6U << 28) | ((__u32)p->tos << 20);
		*(__be32 *)ip6 = bpf_htonl(vtc);
		ip6->payload_len = bpf_htons(p->ip_len + extra);
		ip6->nexthdr = next;
		ip6->hop_limit = TUN_TTL;
		__builtin_memcpy(&ip6->saddr, r->tun_src, 16);
		__builtin_memcpy(&ip6->daddr, r->addr, 16);
		if (gue)
			write_gue((__u8 *)(ip6 + 1), p, r, inner_proto);
		return 0;
	}

	if (p->ip_len + sizeof(struct iphdr) + extra > 0xffff)
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct iphdr) + extra)))
		return -1;
	struct iphdr *iph = write_l2(ctx, r, vlan, vlan_tci, ETH_P_IP_BE, sizeof(struct iphdr) + GUE_LEN * !!gue);
	if (!iph)
		return -1;
	if (gue)
		write_gue((__u8 *)(iph + 1), p, r, inner_proto);
	iph->version = 4;
	iph->ihl = 5;
	iph->tos = p->tos;
	iph->tot_len = bpf_htons(p->ip_len + sizeof(struct iphdr) + extra);
	iph->id = 0;
	/* RFC 2003: copy DF, so path MTU discovery sees the tunnel's overhead. */
	iph->frag_off = p->df ? bpf_htons(IP_DF) : 0;
	iph->ttl = TUN_TTL;
	iph->protocol = next;
	iph->check = 0;
	__builtin_memcpy(&iph->saddr, r->tun_src, 4);
	__builtin_memcpy(&iph->daddr, r->addr, 4);
	ipv4_set_csum(iph);
	return 0;
}

#endif

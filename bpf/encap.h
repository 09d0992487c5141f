/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding rewrites: DR (MAC addresses only) and TUN (IP-in-IP,
 * IPv6-in-IPv6, and the mixed 4-in-6 / 6-in-4 cases). */
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

	if (r->flags & REAL_F_V6) {
		if (p->ip_len + sizeof(struct ipv6hdr) > 0xffff + sizeof(struct ipv6hdr))
			return -1;
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
			return -1;
		struct ipv6hdr *ip6 = write_l2(ctx, r, vlan, vlan_tci, ETH_P_IPV6_BE, sizeof(struct ipv6hdr));
		if (!ip6)
			return -1;
		__u32 vtc = (6U << 28) | ((__u32)p->tos << 20);
		*(__be32 *)ip6 = bpf_htonl(vtc);
		ip6->payload_len = bpf_htons(p->ip_len);
		ip6->nexthdr = inner_proto;
		ip6->hop_limit = TUN_TTL;
		__builtin_memcpy(&ip6->saddr, r->tun_src, 16);
		__builtin_memcpy(&ip6->daddr, r->addr, 16);
		return 0;
	}

	if (p->ip_len + sizeof(struct iphdr) > 0xffff)
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return -1;
	struct iphdr *iph = write_l2(ctx, r, vlan, vlan_tci, ETH_P_IP_BE, sizeof(struct iphdr));
	if (!iph)
		return -1;
	iph->version = 4;
	iph->ihl = 5;
	iph->tos = p->tos;
	iph->tot_len = bpf_htons(p->ip_len + sizeof(struct iphdr));
	iph->id = 0;
	/* RFC 2003: copy DF, so path MTU discovery sees the tunnel's overhead. */
	iph->frag_off = p->df ? bpf_htons(IP_DF) : 0;
	iph->ttl = TUN_TTL;
	iph->protocol = inner_proto;
	iph->check = 0;
	__builtin_memcpy(&iph->saddr, r->tun_src, 4);
	__builtin_memcpy(&iph->daddr, r->addr, 4);
	ipv4_set_csum(iph);
	return 0;
}

#endif

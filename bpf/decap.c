/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The real server's side of TUN (lb_kind TUN) on a kernel without the
 * ipip / ip6tnl / fou modules: an XDP program on the interface the
 * director's packets arrive on strips the outer IPv4 or IPv6 header of
 * IP-in-IP (protocol 4) and IPv6-in-IP (41) packets, or the outer IP, UDP
 * and GUE headers of GUE packets to a port in decap_ports, whose inner
 * destination is one of this host's VIPs, and passes the inner packet to
 * the kernel, which delivers it to the VIP on lo as in DR. Anything else
 * is passed as it is. Nothing is forwarded, so a malformed frame can at
 * worst be passed unchanged. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif

#define MAX_DECAP_VIPS 256
#define MAX_GUE_PORTS 16

/* A VIP: the address in 16 bytes (IPv4 in the first 4) and its family. */
struct decap_vip {
	__u8 addr[16];
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DECAP_VIPS);
	__type(key, struct decap_vip);
	__type(value, __u8);
} decap_vips SEC(".maps");

/* GUE ports (network order) this host decapsulates. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_GUE_PORTS);
	__type(key, __be16);
	__type(value, __u8);
} decap_ports SEC(".maps");

/* gue_len returns the length of the UDP and GUE headers at l4 of a GUE
 * packet to one of decap_ports carrying IPv4 or IPv6, setting *proto to
 * the inner protocol; 0 when it is not one (or, *bad, cannot be read). */
static __always_inline __u32 gue_len(void *l4, void *data_end, __u8 *proto, int *bad)
{
	__u8 *udp = l4;
	if ((void *)(udp + 4) > data_end)
		return 0;
	if (!bpf_map_lookup_elem(&decap_ports, (__be16 *)(udp + 2)))
		return 0;
	if ((void *)(udp + 12) > data_end) {
		*bad = 1;
		return 0;
	}
	__u8 *gue = udp + 8;
	/* Version 0 only; C set is a control message, for the kernel. */
	if ((gue[0] >> 6) != 0 || (gue[0] & 0x20) || (gue[1] != IPPROTO_IPIP && gue[1] != IPPROTO_IPV6)) {
		*bad = 1;
		return 0;
	}
	*proto = gue[1];
	return 8 + 4 + (gue[0] & 0x1f) * 4;
}

enum decap_counter {
	DC_DECAPSULATED = 0,
	DC_NOT_OURS = 1, /* IP-in-IP to an address that is no VIP here */
	DC_MALFORMED = 2,
	DC_MAX = 3,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *n = bpf_map_lookup_elem(&decap_stats, &c);
	if (n)
		*n += 1;
}

/* inner_is_vip reads the inner header at inner (of the given IP protocol
 * number) and reports whether its destination is a VIP; 0 with *bad set
 * when it does not fit. */
static __always_inline int inner_is_vip(void *inner, void *data_end, __u8 proto, __be16 *eth_proto, int *bad)
{
	struct decap_vip k = {};
	if (proto == IPPROTO_IPIP) {
		struct iphdr *ip = inner;
		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5) {
			*bad = 1;
			return 0;
		}
		__builtin_memcpy(k.addr, &ip->daddr, 4);
		k.family = 4;
		*eth_proto = bpf_htons(ETH_P_IP);
	} else {
		struct ipv6hdr *ip6 = inner;
		if ((void *)(ip6 + 1) > data_end || ip6->version != 6) {
			*bad = 1;
			return 0;
		}
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
		k.family = 6;
		*eth_proto = bpf_htons(ETH_P_IPV6);
	}
	return bpf_map_lookup_elem(&decap_vips, &k) != NULL;
}

SEC("xdp")
int govs_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__u32 outer_len;
	__u8 proto;
	void *l3 = eth + 1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		if (ip->protocol != IPPROTO_IPIP && ip->protocol != IPPROTO_IPV6 && ip->protocol != IPPROTO_UDP)
			return XDP_PASS;
		/* A fragment of a tunnelled packet is the kernel's to reassemble
		 * (and to drop, without the tunnel device). */
		if (ip->version != 4 || ip->ihl != 5 || (bpf_ntohs(ip->frag_off) & 0x3fff)) {
			if (ip->protocol != IPPROTO_UDP)
				count(DC_MALFORMED);
			return XDP_PASS;
		}
		outer_len = sizeof(*ip);
		proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->nexthdr != IPPROTO_IPIP && ip6->nexthdr != IPPROTO_IPV6 && ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		outer_len = sizeof(*ip6);
		proto = ip6->nexthdr;
	} else {
		return XDP_PASS;
	}
	__be16 inner_eth_proto = 0;
	int bad = 0;
	if (proto == IPPROTO_UDP) {
		__u32 n = gue_len(l3 + outer_len, data_end, &proto, &bad);
		if (!n) {
			if (bad)
				count(DC_MALFORMED);
			return XDP_PASS; /* other UDP: not ours to look at */
		}
		outer_len += n;
	}
	if (!inner_is_vip(l3 + outer_len, data_end, proto, &inner_eth_proto, &bad)) {
		count(bad ? DC_MALFORMED : DC_NOT_OURS);
		return XDP_PASS;
	}
	/* The Ethernet header moves forward over the outer IP header. */
	struct ethhdr saved;
	__builtin_memcpy(&saved, eth, sizeof(saved));
	saved.h_proto = inner_eth_proto;
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP; /* cannot happen: the inner header follows */
	__builtin_memcpy(eth, &saved, sizeof(saved));
	count(DC_DECAPSULATED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

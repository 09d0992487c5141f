/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* NAT (masquerade) rewrites: towards a real server the destination
 * address and port become the real server's; on the way back the source
 * becomes the VIP and the service's port again. An ICMP error about a NAT
 * flow is rewritten both outside (the address the error travels to or
 * from) and inside (the embedded packet the error quotes), as IPVS does,
 * so the client's kernel matches it to its socket. Checksums are updated
 * incrementally; the embedded packet's own transport checksum is left as
 * quoted (no stack verifies it). */
#ifndef GOVS_NAT_H
#define GOVS_NAT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include "structs.h"
#include "parse.h"
#include "csum.h"

/* What nat_xlate writes. */
struct xlate {
	__u8 addr[16];
	__be16 port;     /* 0: keep the port */
	__u8 to_client;  /* 1: a reply (rewrite the source); 0: towards the real (the destination) */
	__u8 pad;
};

#define OFF_MASK 0x1ff /* every header offset the parser records is below 512 */

/* Rewrites the transport port and checksum at l4 for a change whose
 * pseudo-header part is acc. */
static __always_inline int xlate_l4(void *data, void *end, __u32 off, __u8 proto, __u8 family, const struct xlate *x,
				    __u32 acc)
{
	void *l4 = data + (off & OFF_MASK);
	if (l4 + 8 > end)
		return -1;
	__be16 *port = l4 + (x->to_client ? 0 : 2);
	if (x->port && x->port != *port) {
		acc += (__u16)~*port + x->port;
		*port = x->port;
	}
	if (proto == IPPROTO_TCP) {
		if (l4 + 18 > end)
			return -1;
		__u16 *check = l4 + 16;
		*check = csum_adjust(*check, acc);
		return 0;
	}
	__u16 *check = l4 + 6;
	if (*check == 0 && family == FAMILY_V4)
		return 0; /* no UDP checksum */
	__u16 c = csum_adjust(*check, acc);
	*check = c ? c : 0xffff;
	return 0;
}

/* nat_xlate rewrites the packet p describes as x says. A global function:
 * verified once, apart from govs_xdp's paths. */
__noinline int nat_xlate(struct xdp_md *ctx, const struct pkt *p, const struct xlate *x)
{
	if (!p || !x)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *l3 = data + (p->l3_off & 0x1f);
	int to_client = x->to_client;
	if (p->flow.family == FAMILY_V4) {
		struct iphdr *iph = l3;
		if ((void *)(iph + 1) > end)
			return -1;
		__u8 *a = to_client ? (__u8 *)&iph->saddr : (__u8 *)&iph->daddr;
		__u32 acc = csum_delta(0, a, x->addr, 4);
		__builtin_memcpy(a, x->addr, 4);
		iph->check = csum_adjust(iph->check, acc);
		if (p->frag == FRAG_LATER)
			return 0;
		if (!p->icmp)
			return xlate_l4(data, end, p->l4_off, p->flow.proto, FAMILY_V4, x, acc);
		/* The quoted packet went the other way: towards the real its
		 * source is the VIP, towards the client its destination is the
		 * real server. */
		struct icmp_hdr *icmp = data + (p->l4_off & OFF_MASK);
		struct iphdr *in = (void *)(icmp + 1);
		if ((void *)(in + 1) > end)
			return -1;
		__u8 *ia = to_client ? (__u8 *)&in->daddr : (__u8 *)&in->saddr;
		__u32 iacc = csum_delta(0, ia, x->addr, 4);
		__builtin_memcpy(ia, x->addr, 4);
		__u16 ocheck = in->check;
		in->check = csum_adjust(in->check, iacc);
		iacc = csum_delta(iacc, &ocheck, &in->check, 2);
		void *il4 = data + (p->inner_l4_off & OFF_MASK);
		if (il4 + 4 > end)
			return -1;
		__be16 *port = il4 + (to_client ? 2 : 0);
		if (x->port && x->port != *port) {
			iacc += (__u16)~*port + x->port;
			*port = x->port;
		}
		icmp->checksum = csum_adjust(icmp->checksum, iacc);
		return 0;
	}
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end)
		return -1;
	__u8 *a = to_client ? (__u8 *)&ip6->saddr : (__u8 *)&ip6->daddr;
	__u32 acc = csum_delta(0, a, x->addr, 16);
	__builtin_memcpy(a, x->addr, 16);
	if (p->frag == FRAG_LATER)
		return 0;
	if (!p->icmp)
		return xlate_l4(data, end, p->l4_off, p->flow.proto, FAMILY_V6, x, acc);
	/* ICMPv6's checksum covers the outer addresses too. */
	struct icmp_hdr *icmp = data + (p->l4_off & OFF_MASK);
	struct ipv6hdr *in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end)
		return -1;
	__u8 *ia = to_client ? (__u8 *)&in->daddr : (__u8 *)&in->saddr;
	acc = csum_delta(acc, ia, x->addr, 16);
	__builtin_memcpy(ia, x->addr, 16);
	void *il4 = data + (p->inner_l4_off & OFF_MASK);
	if (il4 + 4 > end)
		return -1;
	__be16 *port = il4 + (to_client ? 2 : 0);
	if (x->port && x->port != *port) {
		acc += (__u16)~*port + x->port;
		*port = x->port;
	}
	icmp->checksum = csum_adjust(icmp->checksum, acc);
	return 0;
}

/* nat_to_real rewrites a packet towards NAT real server r. A global
 * function: its stack is not govs_xdp's. */
__noinline int nat_to_real(struct xdp_md *ctx, const struct pkt *p, const struct real *r)
{
	if (!r)
		return -1;
	struct xlate x = {.port = r->port};
	__builtin_memcpy(x.addr, r->addr, 16);
	return nat_xlate(ctx, p, &x);
}

#endif

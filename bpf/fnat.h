/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* FullNAT (lb_kind FNAT, as the Alibaba LVS fork and DPVS have it): towards
 * the real server the destination becomes the real server's address and
 * port and the source one of the service's local addresses with a local
 * port of its own; the real server answers that local address, needing no
 * route back through the director, and the reply's source becomes the VIP
 * and port again and its destination the client's.
 *
 * A connection takes a local port when it starts: the reply's flow (real
 * server:port -> local address:port) is inserted into fnat_backs only if
 * no live entry has it, so two connections never share a port at one real
 * server; an entry past its timeout is taken over. fnat_fwds maps the
 * client's flow to what it was given. Included by balancer.c after the
 * helpers it uses (counters, own_mac, timeout_for, reply_out). */
#ifndef GOVS_FNAT_H
#define GOVS_FNAT_H

#include "nat.h"

/* fnat_xlate rewrites both ends: the destination to dst:dport, the source
 * to src:sport (the order does not matter, each fixes its checksums). */
static __always_inline int fnat_xlate(struct xdp_md *ctx, const struct pkt *p, const __u8 *dst, __be16 dport,
				      const __u8 *src, __be16 sport)
{
	struct xlate x = {.port = dport, .to_client = 0};
	__builtin_memcpy(x.addr, dst, 16);
	if (nat_xlate(ctx, p, &x))
		return -1;
	x.port = sport;
	x.to_client = 1;
	__builtin_memcpy(x.addr, src, 16);
	return nat_xlate(ctx, p, &x);
}

/* fnat_back_key is the reply flow of a connection given laddr:lport at
 * real r. */
static __always_inline void fnat_back_key(struct flow *k, const struct pkt *p, const struct real *r, const __u8 *laddr,
					  __be16 lport)
{
	k->sport = r->port ? r->port : p->flow.dport;
	k->dport = lport;
	k->proto = p->flow.proto;
	k->family = p->flow.family;
	k->pad[0] = 0;
	k->pad[1] = 0;
	__builtin_memcpy(k->src, r->addr, 16);
	__builtin_memcpy(k->dst, laddr, 16);
}

/* fnat_prepare makes sure the flow p has a local address and port at
 * real_id (a new connection, or one rescheduled or whose entries are gone:
 * synced from a peer, swept), and keeps its entries fresh: refreshed at
 * most once a second, embryonic until the client's second packet, closing
 * after a FIN or RST. 0 on success, -1 when no local port is free (or the
 * service has no local address). A global function, verified once. */
struct fnat_req {
	__u32 slot, svc_id, real_id, state;
	__u64 now;
};

__noinline int fnat_prepare(struct xdp_md *ctx, const struct pkt *p, const struct fnat_req *q)
{
	if (!ctx || !p || !q)
		return -1;
	__u32 slot = q->slot, svc_id = q->svc_id, real_id = q->real_id, state = q->state;
	__u64 now = q->now;
	struct real *r = real_of(real_id);
	if (!r)
		return -1;
	__u32 flags = state & (CONN_F_EMBRYO | CONN_F_FIN);
	struct flow bk;
	struct fnat_fwd *fw = bpf_map_lookup_elem(&fnat_fwds, &p->flow);
	/* A new connection on an old tuple gets a new port: the real server
	 * may hold the old one in TIME_WAIT. */
	if (fw && fw->real_id == real_id && !(state & FNAT_NEW)) {
		__u32 nflags = flags | (fw->flags & CONN_F_FIN);
		if (nflags == fw->flags && age_ns(now, fw->last_ns) <= REFRESH_NS)
			return 0;
		fw->flags = nflags;
		fw->last_ns = now;
		fnat_back_key(&bk, p, r, fw->laddr, fw->lport);
		struct fnat_back *b = bpf_map_lookup_elem(&fnat_backs, &bk);
		if (b && b->real_id == real_id) {
			b->flags = nflags;
			b->last_ns = now;
			return 0;
		}
		/* Its port was swept or taken over: take a new one. */
	}
	if (fw) {
		/* Rescheduled, or a new connection: free the old port. */
		struct real *old = real_of(fw->real_id);
		if (old) {
			fnat_back_key(&bk, p, old, fw->laddr, fw->lport);
			bpf_map_delete_elem(&fnat_backs, &bk);
		}
	}
	struct svc_laddrs *la = bpf_map_lookup_elem(&svc_laddrs, &slot);
	if (!la || la->n == 0 || la->n > MAX_LADDRS)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	/* One buffer for both values: the stack of a call chain is limited. */
	union {
		struct fnat_back b;
		struct fnat_fwd f;
	} u = {};
	struct fnat_back *v = &u.b;
	v->vport = p->flow.dport;
	v->cport = p->flow.sport;
	v->ifindex = ctx->ingress_ifindex;
	v->svc_id = svc_id;
	v->real_id = real_id;
	v->flags = flags;
	v->last_ns = now;
	__builtin_memcpy(v->vaddr, p->flow.dst, 16);
	__builtin_memcpy(v->caddr, p->flow.src, 16);
	__builtin_memcpy(v->mac, eth->h_source, ETH_ALEN);
	__u32 h = hash_final(hash_mix(hash_addr16(HASH_SEED, p->flow.src), p->flow.sport));
	__u32 n = la->n;
	for (__u32 i = 0; i < FNAT_TRIES; i++) {
		__u32 idx = (h + i) % n;
		if (idx >= MAX_LADDRS)
			return -1;
		__be16 lport = bpf_htons(FNAT_PORT_MIN + ((h >> 7) + i * 7919) % FNAT_PORTS);
		fnat_back_key(&bk, p, r, la->addr[idx], lport);
		if (bpf_map_update_elem(&fnat_backs, &bk, v, BPF_NOEXIST)) {
			struct fnat_back *b = bpf_map_lookup_elem(&fnat_backs, &bk);
			/* Taken, and alive: the next port. Expired: its flow
			 * is over, the port is free again. */
			if (b && age_ns(now, b->last_ns) <= timeout_for(&bk, b->flags))
				continue;
			bpf_map_delete_elem(&fnat_backs, &bk);
			if (bpf_map_update_elem(&fnat_backs, &bk, v, BPF_NOEXIST))
				continue;
		}
		struct fnat_fwd *nf = &u.f;
		__builtin_memset(nf, 0, sizeof(*nf));
		nf->lport = lport;
		nf->rport = bk.sport;
		nf->real_id = real_id;
		nf->flags = flags;
		nf->last_ns = now;
		__builtin_memcpy(nf->laddr, la->addr[idx], 16);
		if (bpf_map_update_elem(&fnat_fwds, &p->flow, nf, BPF_ANY)) {
			bpf_map_delete_elem(&fnat_backs, &bk);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* fnat_to_real rewrites a packet of a FullNAT flow (or an ICMP error about
 * one, from the client's side) towards real server r. A global function. */
__noinline int fnat_to_real(struct xdp_md *ctx, const struct pkt *p, const struct real *r)
{
	if (!p || !r)
		return -1;
	struct fnat_fwd *fw = bpf_map_lookup_elem(&fnat_fwds, &p->flow);
	if (!fw)
		return -1;
	return fnat_xlate(ctx, p, r->addr, fw->rport, fw->laddr, fw->lport);
}

/* fnat_reply turns a FullNAT real server's reply (or an ICMP error about a
 * FullNAT flow, addressed to the local address) back into the service's
 * and sends it to the client the way its packets came. Anything else goes
 * to the kernel. A global function. */
__noinline int fnat_reply(struct xdp_md *ctx, const struct pkt *p, __u32 pass_counter)
{
	if (!p)
		return XDP_PASS;
	struct fnat_back *b = bpf_map_lookup_elem(&fnat_backs, &p->flow);
	if (!b) {
		if (!p->icmp && bpf_ntohs(p->flow.dport) >= FNAT_PORT_MIN) {
			struct svc_key lk = {.family = p->flow.family};
			__builtin_memcpy(lk.addr, p->flow.dst, 16);
			if (bpf_map_lookup_elem(&local_addrs, &lk)) {
				count_global(G_FNAT_UNKNOWN);
				return XDP_DROP;
			}
		}
		count_global(pass_counter);
		return XDP_PASS;
	}
	__u64 now = coarse_now();
	if (age_ns(now, b->last_ns) > timeout_for(&p->flow, b->flags)) {
		count_global(pass_counter);
		return XDP_PASS;
	}
	const __u8 *src = b->ifindex ? own_mac(b->ifindex) : NULL;
	if (!src) {
		count_global(G_NAT_UNLEARNT);
		return XDP_DROP;
	}
	if (age_ns(now, b->last_ns) > REFRESH_NS)
		b->last_ns = now;
	/* b stays valid for the program's run: no copies on the stack. */
	if (fnat_xlate(ctx, p, b->caddr, b->cport, b->vaddr, b->vport))
		return XDP_DROP;
	return reply_out(ctx, b->mac, src, b->ifindex, b->svc_id, b->real_id, p->icmp ? G_NAT_ICMP : G_FNAT_REPLY);
}

#endif

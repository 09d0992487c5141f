// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* govs XDP balancer: runs on the director's LAN-facing interfaces, forwards
 * packets of configured virtual services to a real server (DR, TUN or NAT),
 * turns NAT real servers' replies back into the service's, and passes
 * everything else to the kernel untouched.
 *
 * Per packet: parse -> ICMP error or later fragment? follow the tracked flow
 * -> service lookup (VIP, port, proto; then VIP, 0, proto; neither: a NAT
 * reply?) -> connection table -> persistence -> scheduler -> rewrite ->
 * XDP_TX / redirect. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"
#include "maps.h"
#include "clock.h"
#include "parse.h"
#include "hash.h"
#include "encap.h"
#include "nat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void count_global(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&global_stats, &idx);
	if (c)
		*c += 1;
}

static __always_inline int drop(__u32 svc_id, __u32 reason)
{
	struct svc_stats *s = bpf_map_lookup_elem(&svc_counters, &svc_id);
	if (s && reason < DROP_MAX)
		s->drops[reason] += 1;
	return XDP_DROP;
}

static __always_inline void count_fwd(__u32 svc_id, __u32 real_id, __u64 bytes, int new_conn)
{
	struct svc_stats *s = bpf_map_lookup_elem(&svc_counters, &svc_id);
	if (s) {
		s->packets += 1;
		s->bytes += bytes;
		s->new_conns += new_conn;
	}
	struct real_stats *r = bpf_map_lookup_elem(&real_counters, &real_id);
	if (r) {
		r->packets += 1;
		r->bytes += bytes;
		r->new_conns += new_conn;
	}
}

/* count_out counts a NAT reply as IPVS's outgoing packets and bytes. */
static __always_inline void count_out(__u32 svc_id, __u32 real_id, __u64 bytes)
{
	struct svc_stats *s = bpf_map_lookup_elem(&svc_counters, &svc_id);
	if (s) {
		s->out_packets += 1;
		s->out_bytes += bytes;
	}
	struct real_stats *r = bpf_map_lookup_elem(&real_counters, &real_id);
	if (r) {
		r->out_packets += 1;
		r->out_bytes += bytes;
	}
}

static __always_inline __u64 timeout_for(const struct flow *f, __u32 conn_flags)
{
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&settings, &zero);
	__u64 t;
	if (f->proto == IPPROTO_TCP) {
		if (conn_flags & CONN_F_EMBRYO)
			return EMBRYO_TIMEOUT_NS;
		if (conn_flags & CONN_F_FIN) {
			t = c ? c->tcp_fin_timeout_ns : 0;
			return t ? t : DEFAULT_TCP_FIN_TIMEOUT_NS;
		}
		t = c ? c->tcp_timeout_ns : 0;
		return t ? t : DEFAULT_TCP_TIMEOUT_NS;
	}
	t = c ? c->udp_timeout_ns : 0;
	return t ? t : DEFAULT_UDP_TIMEOUT_NS;
}

static __always_inline __u64 frag_timeout(void)
{
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&settings, &zero);
	__u64 t = c ? c->frag_timeout_ns : 0;
	return t ? t : DEFAULT_FRAG_TIMEOUT_NS;
}

/* flow_admitted counts a new entry against the new-flow limit and reports
 * whether it is within it. One counter for all CPUs, so the limit is the
 * director's; it is touched by new flows only. Races at a second's turn
 * admit a few more. */
static __always_inline int flow_admitted(__u64 now)
{
	__u32 zero = 0;
	struct flow_limit *g = bpf_map_lookup_elem(&flow_guard, &zero);
	if (!g || g->limit == 0)
		return 1;
	__u64 second = now / 1000000000ULL;
	if (g->second != second) {
		g->second = second;
		g->made = 0;
	}
	__sync_fetch_and_add(&g->made, 1);
	return g->made <= g->limit;
}

/* hash_scheduled reports whether a service's scheduler is a pure function
 * of the packet and the service's table (mh, sh, dh): its flows can be
 * forwarded without an entry and stay put while the table stands. */
static __always_inline int hash_scheduled(const struct svc_meta *m)
{
	return m->sched == SCHED_MH || m->sched == SCHED_SH || m->sched == SCHED_DH;
}

static __always_inline void active_add(__u32 real_id, __s64 d)
{
	__s64 *n = bpf_map_lookup_elem(&active_conns, &real_id);
	if (n)
		__sync_fetch_and_add(n, d);
}

/* bpf/fnat.h, which needs helpers defined below. */
__noinline int fnat_to_real(struct xdp_md *ctx, const struct pkt *p, const struct real *r);

/* Sends the (already parsed) packet to real r. */
/* tun_too_big answers a packet that encapsulation would make bigger than
 * the egress MTU as a router does (and IPVS's tunnel transmit): an ICMP
 * "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6) back to
 * the client, from the VIP, with the MTU less the tunnel's overhead, so the
 * client's path MTU shrinks to what fits. It returns 0 when the packet
 * fits, 1 when the frame now holds the answer (to send back with
 * XDP_TX), and -1 when it cannot be sent (IPv4 without DF, which only a
 * fragmenting router could forward, an ICMP error, IP options): drop. A
 * global function, checked once by the verifier. */
__noinline int tun_too_big(struct xdp_md *ctx, const struct pkt *p, const struct real *r)
{
	if (!ctx || !p || !r)
		return -1;
	__s32 overhead = (r->flags & REAL_F_V6) ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	if (r->flags & REAL_F_GUE)
		overhead += GUE_LEN;
	__u32 mtu = 0;
	__u32 ifindex = r->ifindex ? r->ifindex : ctx->ingress_ifindex;
	/* The helper counts the frame against MTU + 14: a VLAN tag is not
	 * part of the packet the MTU limits. */
	__s32 diff = p->l3_off == 18 ? overhead - 4 : overhead;
	if (bpf_check_mtu(ctx, ifindex, &mtu, diff, 0) != BPF_MTU_CHK_RET_FRAG_NEEDED)
		return 0;
	if (p->icmp || !p->df || mtu <= (__u32)overhead)
		return -1;
	__u32 next_mtu = mtu - overhead;
	__u32 l2 = p->l3_off;
	if (l2 != 14 && l2 != 18)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + l2 > data_end)
		return -1;
	struct ethhdr eth;
	__builtin_memcpy(&eth, data, sizeof(eth));
	__be16 tci = 0;
	if (l2 == 18) {
		if (data + 18 > data_end)
			return -1;
		tci = *(__be16 *)(data + 14);
	}
	if (p->flow.family == FAMILY_V4) {
		/* IP (20) + ICMP (8) + the packet's header (20: no options) and
		 * its first 8 bytes. */
		struct iphdr *q = data + l2;
		if ((void *)(q + 1) > data_end || q->ihl != 5)
			return -1;
		if (bpf_xdp_adjust_head(ctx, -28))
			return -1;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		__u32 len = l2 + 28 + 28;
		if (data + len > data_end)
			return -1;
		if (bpf_xdp_adjust_tail(ctx, (int)len - (int)(data_end - data)))
			return -1;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + l2 + 56 > data_end)
			return -1;
		struct ethhdr *e = data;
		__builtin_memcpy(e->h_dest, eth.h_source, ETH_ALEN);
		__builtin_memcpy(e->h_source, eth.h_dest, ETH_ALEN);
		e->h_proto = eth.h_proto;
		if (l2 == 18) {
			*(__be16 *)(data + 14) = tci;
			*(__be16 *)(data + 16) = ETH_P_IP_BE;
		}
		struct iphdr *ip = data + l2;
		struct iphdr *quoted = data + l2 + 28;
		__u8 *icmp = data + l2 + 20;
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0;
		ip->tot_len = bpf_htons(56);
		ip->id = 0;
		ip->frag_off = 0;
		ip->ttl = 64;
		ip->protocol = IPPROTO_ICMP;
		ip->check = 0;
		ip->saddr = quoted->daddr;
		ip->daddr = quoted->saddr;
		ipv4_set_csum(ip);
		icmp[0] = ICMP_DEST_UNREACH;
		icmp[1] = ICMP_FRAG_NEEDED;
		*(__u16 *)(icmp + 2) = 0;
		*(__u16 *)(icmp + 4) = 0;
		*(__be16 *)(icmp + 6) = bpf_htons(next_mtu);
		__u32 sum = 0;
		__u16 *w = (__u16 *)icmp;
#pragma unroll
		for (int i = 0; i < 18; i++)
			sum += w[i];
		*(__u16 *)(icmp + 2) = csum_fold(sum);
		count_global(G_TUN_TOO_BIG);
		return 1;
	}
	/* IPv6 (40) + ICMPv6 (8) + the packet's header (40) and its first 8
	 * bytes. */
	struct ipv6hdr *q6 = data + l2;
	if ((void *)(q6 + 1) > data_end)
		return -1;
	if (bpf_xdp_adjust_head(ctx, -48))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	__u32 len6 = l2 + 48 + 48;
	if (data + len6 > data_end)
		return -1;
	if (bpf_xdp_adjust_tail(ctx, (int)len6 - (int)(data_end - data)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + l2 + 96 > data_end)
		return -1;
	struct ethhdr *e6 = data;
	__builtin_memcpy(e6->h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(e6->h_source, eth.h_dest, ETH_ALEN);
	e6->h_proto = eth.h_proto;
	if (l2 == 18) {
		*(__be16 *)(data + 14) = tci;
		*(__be16 *)(data + 16) = ETH_P_IPV6_BE;
	}
	struct ipv6hdr *ip6 = data + l2;
	struct ipv6hdr *quoted6 = data + l2 + 48;
	__u8 *icmp6 = data + l2 + 40;
	*(__be32 *)ip6 = bpf_htonl(6U << 28);
	ip6->payload_len = bpf_htons(56);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, &quoted6->daddr, 16);
	__builtin_memcpy(&ip6->daddr, &quoted6->saddr, 16);
	icmp6[0] = ICMPV6_PKT_TOOBIG;
	icmp6[1] = 0;
	*(__u16 *)(icmp6 + 2) = 0;
	*(__be32 *)(icmp6 + 4) = bpf_htonl(next_mtu < 1280 ? 1280 : next_mtu);
	/* Pseudo-header: addresses, length 56, next header 58. */
	__u32 sum6 = bpf_htons(56) + bpf_htons(IPPROTO_ICMPV6);
	__u16 *a = (__u16 *)&ip6->saddr;
#pragma unroll
	for (int i = 0; i < 16; i++)
		sum6 += a[i];
	__u16 *m = (__u16 *)icmp6;
#pragma unroll
	for (int i = 0; i < 28; i++)
		sum6 += m[i];
	*(__u16 *)(icmp6 + 2) = csum_fold(sum6);
	count_global(G_TUN_TOO_BIG);
	return 1;
}

static __always_inline int forward(struct xdp_md *ctx, const struct pkt *p, const struct real *r, __u32 svc_id,
				   __u32 real_id, int new_conn)
{
	__u64 bytes = ctx->data_end - ctx->data;
	if (r->flags & REAL_F_TUN) {
		int big = tun_too_big(ctx, p, r);
		if (big > 0)
			return XDP_TX;
		if (big < 0)
			return drop(svc_id, DROP_ENCAP);
		if (tun_encap(ctx, p, r))
			return drop(svc_id, DROP_ENCAP);
	} else if (r->flags & REAL_F_NAT) {
		if (nat_to_real(ctx, p, r) || dr_rewrite(ctx, r))
			return drop(svc_id, DROP_ENCAP);
	} else if (r->flags & REAL_F_FNAT) {
		if (fnat_to_real(ctx, p, r) || dr_rewrite(ctx, r))
			return drop(svc_id, DROP_ENCAP);
	} else if (dr_rewrite(ctx, r)) {
		return drop(svc_id, DROP_ENCAP);
	}
	count_fwd(svc_id, real_id, bytes, new_conn);
	if (r->ifindex == 0 || r->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	long act = bpf_redirect_map(&tx_ports, r->ifindex, XDP_DROP);
	if (act != XDP_REDIRECT)
		return drop(svc_id, DROP_REDIRECT);
	return XDP_REDIRECT;
}

static __always_inline __u32 table_lookup(__u32 slot, __u32 idx)
{
	void *table = bpf_map_lookup_elem(&tables, &slot);
	if (!table)
		return 0;
	__u32 *id = bpf_map_lookup_elem(table, &idx);
	return id ? *id : 0;
}

/* The schedulers that scan the service's reals (weight > 0 only), with
 * IPVS's rules (ip_vs_{lc,wlc,sed,nq,fo,ovf}.c; n is the real's active
 * connections):
 *   lc   fewest n;  wlc fewest n/weight;  sed fewest (n+1)/weight;
 *   nq   the first real with n = 0, else as sed;
 *   fo   the highest weight;  ovf the highest weight with n <= weight.
 * Ratios are compared by cross-multiplying; ties go to the earlier entry.
 * A global function: its 64-step loop is verified once, not on every path
 * of govs_xdp that schedules. */
__noinline __u32 pick_least(const struct svc_meta *m, __u32 mode)
{
	if (!m)
		return 0;
	/* Every rule is "the smallest a/b": lc n/1, wlc n/w, sed and nq
	 * (n+1)/w, fo and ovf 1/w (the highest weight). The mode only sets
	 * these few flags, so the loop body does not branch by scheduler. */
	__u64 add = mode == SCHED_SED || mode == SCHED_NQ;
	int use_w = mode != SCHED_LC;
	int by_weight = mode == SCHED_FO || mode == SCHED_OVF;
	int skip_over = mode == SCHED_OVF;
	int idle_first = mode == SCHED_NQ;
	__u32 best = 0;
	__u64 best_a = 0, best_b = 1;
	for (int i = 0; i < MAX_SVC_REALS; i++) {
		if (i >= m->nreals)
			break;
		__u32 id = m->reals[i].id;
		__u64 w = m->reals[i].weight;
		if (id == 0 || w == 0)
			continue;
		__s64 *np = bpf_map_lookup_elem(&active_conns, &id);
		__s64 *xp = bpf_map_lookup_elem(&expired_conns, &id);
		__s64 n = (np ? *np : 0) - (xp ? *xp : 0);
		if (n < 0)
			n = 0;
		if (skip_over && (__u64)n > w)
			continue;
		if (idle_first && n == 0)
			return id;
		__u64 a = by_weight ? 1 : (__u64)n + add;
		__u64 b = use_w ? w : 1;
		if (best == 0 || a * best_b < best_a * b) {
			best = id;
			best_a = a;
			best_b = b;
		}
	}
	return best;
}

static __always_inline __s64 real_active(__u32 id)
{
	__s64 *np = bpf_map_lookup_elem(&active_conns, &id);
	__s64 *xp = bpf_map_lookup_elem(&expired_conns, &id);
	__s64 n = (np ? *np : 0) - (xp ? *xp : 0);
	return n < 0 ? 0 : n;
}

/* twos (IPVS's weighted random twos choice): two servers drawn with
 * probability proportional to their weights; the one with fewer active
 * connections per weight wins (the first on a tie). */
__noinline __u32 pick_twos(const struct svc_meta *m)
{
	if (!m)
		return 0;
	__u64 total = 0;
	for (int i = 0; i < MAX_SVC_REALS; i++) {
		if (i >= m->nreals)
			break;
		if (m->reals[i].id != 0)
			total += m->reals[i].weight;
	}
	if (total == 0)
		return 0;
	__u64 r1 = bpf_get_prandom_u32() % total, r2 = bpf_get_prandom_u32() % total;
	__u32 c1 = 0, c2 = 0;
	__u64 w1 = 1, w2 = 1, cum = 0;
	for (int i = 0; i < MAX_SVC_REALS; i++) {
		if (i >= m->nreals)
			break;
		__u32 id = m->reals[i].id;
		__u64 w = m->reals[i].weight;
		if (id == 0 || w == 0)
			continue;
		if (c1 == 0 && r1 < cum + w) {
			c1 = id;
			w1 = w;
		}
		if (c2 == 0 && r2 < cum + w) {
			c2 = id;
			w2 = w;
		}
		cum += w;
	}
	if (c1 == 0 || c2 == 0)
		return c1 ? c1 : c2;
	return (__u64)real_active(c2) * w1 < (__u64)real_active(c1) * w2 ? c2 : c1;
}

/* weight_in is the weight of real id in service m (0: not in it). A global
 * function, verified once. */
__noinline __u32 weight_in(const struct svc_meta *m, __u32 id)
{
	if (!m || id == 0)
		return 0;
	for (int i = 0; i < MAX_SVC_REALS; i++) {
		if (i >= m->nreals)
			break;
		if (m->reals[i].id == id)
			return m->reals[i].weight;
	}
	return 0;
}

/* half_loaded reports whether a server of m has fewer active connections
 * than half its weight (IPVS's lblc overload test). */
__noinline int half_loaded(const struct svc_meta *m)
{
	if (!m)
		return 0;
	int half = 0;
	for (int i = 0; i < MAX_SVC_REALS; i++) {
		if (i >= m->nreals)
			break;
		__u32 id = m->reals[i].id;
		__u64 w = m->reals[i].weight;
		if (id != 0 && w != 0)
			half |= (__u64)real_active(id) * 2 < w;
	}
	return half;
}

/* lblc and lblcr (IPVS's locality-based least connection, for cache
 * clusters): a destination address keeps its server (lblc) or the least
 * loaded of its set of servers (lblcr) unless that one is overloaded (more
 * active connections than its weight while another server is below half
 * of its weight); then the wlc choice serves it (lblc: instead, lblcr: in
 * addition, at most LOC_SET servers, the busiest making room). An lblcr
 * set of several servers sheds its busiest every LOCALITY_EXPIRE_NS. One
 * pass over the reals gathers everything: the set members' loads, the wlc
 * choice and whether a half-loaded server exists. */
__noinline __u32 pick_local(const struct svc_meta *m, const struct flow *f, __u32 svc_id, __u64 now)
{
	if (!m || !f)
		return 0;
	int replicate = m->sched == SCHED_LBLCR;
	struct loc_key k = {.svc_id = svc_id, .family = f->family};
	__builtin_memcpy(k.dst, f->dst, 16);
	/* The entry is read in place (not copied: the stack is short here). */
	struct loc_val *e = bpf_map_lookup_elem(&locality, &k);
	if (e && age_ns(now, e->last_ns) > LOCALITY_EXPIRE_NS)
		e = NULL;
	__u64 lastmod = e ? e->lastmod_ns : 0;

	/* The set's members still in the service with weight > 0, their least
	 * and most loaded (by active connections per weight). */
	struct loc_val nv = {.lastmod_ns = lastmod, .last_ns = now};
	__u32 smin = 0, smax = 0;
	__u64 smin_n = 0, smin_w = 1, smax_n = 0, smax_w = 1;
	int size = 0;
	for (int s = 0; s < LOC_SET; s++) {
		if (s > 0 && !replicate)
			break;
		__u32 id = e ? e->ids[s & (LOC_SET - 1)] : 0;
		__u64 w = weight_in(m, id);
		if (w == 0)
			continue;
		__u64 n = real_active(id);
		nv.ids[s & (LOC_SET - 1)] = id;
		size++;
		if (smin == 0 || n * smin_w < smin_n * w) {
			smin = id;
			smin_n = n;
			smin_w = w;
		}
		if (smax == 0 || n * smax_w > smax_n * w) {
			smax = id;
			smax_n = n;
			smax_w = w;
		}
	}
	if (replicate && size > 1 && age_ns(now, lastmod) > LOCALITY_EXPIRE_NS) {
		/* Shed the busiest member. */
		for (int s = 0; s < LOC_SET; s++)
			if (nv.ids[s & (LOC_SET - 1)] == smax)
				nv.ids[s & (LOC_SET - 1)] = 0;
		nv.lastmod_ns = now;
		if (smin == smax)
			smin = 0;
	}
	__u32 pick = smin;
	if (pick == 0 || (smin_n > smin_w && half_loaded(m))) {
		/* Only now the wlc choice: a destination that keeps its server
		 * (most new connections) needs no second scan. */
		__u32 wlc = pick_least(m, SCHED_WLC);
		if (wlc == 0)
			return 0;
		pick = wlc;
		if (!replicate) {
			nv.ids[0] = wlc;
		} else if (nv.ids[0] != wlc && nv.ids[1] != wlc && nv.ids[2] != wlc && nv.ids[3] != wlc) {
			/* Add it: into a free slot, else in place of the busiest. */
			int slot = -1;
			for (int s = 0; s < LOC_SET; s++)
				if (slot < 0 && nv.ids[s & (LOC_SET - 1)] == 0)
					slot = s;
			for (int s = 0; s < LOC_SET; s++)
				if (slot < 0 && nv.ids[s & (LOC_SET - 1)] == smax)
					slot = s;
			if (slot < 0)
				slot = 0;
			nv.ids[slot & (LOC_SET - 1)] = wlc;
			nv.lastmod_ns = now;
		}
	}
	bpf_map_update_elem(&locality, &k, &nv, BPF_ANY);
	return pick;
}

static __always_inline __u32 schedule(const struct svc_meta *m, __u32 slot, __u32 svc_id, const struct pkt *p)
{
	__u32 len = m->table_len;
	__u32 h;
	switch (m->sched) {
	case SCHED_MH:
	case SCHED_SH:
		/* Both hash the client's address, with its port under sh-port /
		 * mh-port, as IPVS's mh and sh do: a client stays on its server
		 * while the server set stands. */
		h = m->flags & SVC_F_HASH_PORT ? hash_src_port(&p->flow) : hash_src(&p->flow);
		break;
	case SCHED_DH:
		h = hash_dst(&p->flow);
		break;
	case SCHED_RR: {
		__u32 *pos = bpf_map_lookup_elem(&rr_pos, &svc_id);
		if (!pos)
			return 0;
		h = *pos;
		*pos = h + 1 >= len ? 0 : h + 1;
		break;
	}
	case SCHED_LC:
	case SCHED_WLC:
	case SCHED_SED:
	case SCHED_NQ:
	case SCHED_FO:
	case SCHED_OVF:
		return pick_least(m, m->sched);
	case SCHED_TWOS:
		return pick_twos(m);
	case SCHED_LBLC:
	case SCHED_LBLCR:
		return pick_local(m, &p->flow, svc_id, coarse_now());
	default:
		return 0;
	}
	if (len == 0)
		return 0;
	return table_lookup(slot, h % len);
}

static __always_inline void persist_key_of(struct persist_key *k, const struct svc_meta *m, const struct pkt *p,
					   __u32 svc_id)
{
	const __u32 *a = (const __u32 *)p->flow.src;
	const __u32 *mask = (const __u32 *)m->persist_mask;
	__u32 *o = (__u32 *)k->addr;
	o[0] = a[0] & mask[0];
	o[1] = a[1] & mask[1];
	o[2] = a[2] & mask[2];
	o[3] = a[3] & mask[3];
	k->svc_id = svc_id;
	k->family = p->flow.family;
}

/* Follows a connection (ICMP error, later fragment) to its real server. */
static __always_inline int forward_tracked(struct xdp_md *ctx, const struct pkt *p, __u32 real_id, __u32 svc_id)
{
	struct real *r = real_of(real_id);
	if (!r)
		return drop(svc_id, DROP_REAL_MISSING);
	return forward(ctx, p, r, svc_id, real_id, 0);
}

/* nat_learn records (or refreshes) how the replies of a flow p forwards to
 * NAT real server r come back: to the VIP and port p was sent to, through
 * the interface and to the MAC p came from. Called before the rewrite. A
 * global function, verified once. */
__noinline int nat_learn(struct xdp_md *ctx, const struct pkt *p, __u32 svc_id, __u32 real_id, __u64 now)
{
	if (!p)
		return 0;
	struct real *r = real_of(real_id);
	if (!r)
		return 0;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	struct flow k = {.sport = r->port ? r->port : p->flow.dport, .dport = p->flow.sport,
			 .proto = p->flow.proto, .family = p->flow.family};
	__builtin_memcpy(k.src, r->addr, 16);
	__builtin_memcpy(k.dst, p->flow.src, 16);
	struct nat_back v = {
		.vport = p->flow.dport, .ifindex = ctx->ingress_ifindex, .svc_id = svc_id, .real_id = real_id, .last_ns = now};
	__builtin_memcpy(v.vaddr, p->flow.dst, 16);
	__builtin_memcpy(v.mac, eth->h_source, ETH_ALEN);
	bpf_map_update_elem(&nat_backs, &k, &v, BPF_ANY);
	return 0;
}

/* own_mac is an attached interface's MAC (NULL: not attached). */
static __always_inline const __u8 *own_mac(__u32 ifindex)
{
	__u32 slot = ifindex & (IF_MAC_SLOTS - 1);
	struct if_mac_slot *s = bpf_map_lookup_elem(&if_mac_slots, &slot);
	if (s && s->ifindex == ifindex)
		return s->addr;
	struct if_mac *m = bpf_map_lookup_elem(&if_macs, &ifindex);
	return m ? m->addr : NULL;
}

/* reply_out sends a reply rewritten back into the service's (or an ICMP
 * error about a flow) to the client: to the MAC its packets came from,
 * from the interface's own, counted, out of the interface they came in on. */
static __always_inline int reply_out(struct xdp_md *ctx, const __u8 *dst, const __u8 *src, __u32 ifindex, __u32 svc_id,
				     __u32 real_id, __u32 counter)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	count_global(counter);
	count_out(svc_id, real_id, end - data);
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, ifindex, XDP_DROP);
}

#include "fnat.h"

/* nat_reply's answer for a packet of no NAT flow. */
#define NAT_MISS (-1)

/* nat_reply turns a NAT real server's reply (or an ICMP error about a NAT
 * flow, addressed to the client) back into the service's and sends it the
 * way the client's packets came; NAT_MISS when it is none. A global
 * function: its stack is not govs_xdp's. */
__noinline int nat_reply(struct xdp_md *ctx, const struct pkt *p, __u32 pass_counter)
{
	if (!p)
		return XDP_PASS;
	struct nat_back *b = bpf_map_lookup_elem(&nat_backs, &p->flow);
	if (!b)
		return NAT_MISS;
	__u64 now = coarse_now();
	if (age_ns(now, b->last_ns) > timeout_for(&p->flow, 0)) {
		bpf_map_delete_elem(&nat_backs, &p->flow);
		count_global(pass_counter);
		return XDP_PASS;
	}
	if (b->ifindex == 0) {
		count_global(G_NAT_UNLEARNT);
		return XDP_DROP;
	}
	const __u8 *src = own_mac(b->ifindex);
	if (!src) {
		count_global(G_NAT_UNLEARNT);
		return XDP_DROP;
	}
	if (age_ns(now, b->last_ns) > REFRESH_NS)
		b->last_ns = now;
	struct xlate x = {.port = b->vport, .to_client = 1};
	__builtin_memcpy(x.addr, b->vaddr, 16);
	__u32 ifindex = b->ifindex;
	__u32 svc_id = b->svc_id, real_id = b->real_id;
	__u8 dst[ETH_ALEN];
	__builtin_memcpy(dst, b->mac, ETH_ALEN);
	__u8 smac[ETH_ALEN];
	__builtin_memcpy(smac, src, ETH_ALEN);
	if (nat_xlate(ctx, p, &x))
		return XDP_DROP;
	return reply_out(ctx, dst, smac, ifindex, svc_id, real_id, p->icmp ? G_NAT_ICMP : G_NAT_REPLY);
}

/* reply_path sends back a NAT or FullNAT real server's reply, or passes
 * what is neither. Two calls rather than one inside the other: the
 * verifier limits the stack of a call chain. */
static __always_inline int reply_path(struct xdp_md *ctx, const struct pkt *p, __u32 pass_counter)
{
	int v = nat_reply(ctx, p, pass_counter);
	if (v != NAT_MISS)
		return v;
	return fnat_reply(ctx, p, pass_counter);
}

static __always_inline int handle_icmp(struct xdp_md *ctx, struct pkt *p)
{
	struct conn *c = bpf_map_lookup_elem(&conns, &p->flow);
	if (!c && p->flow.proto == IPPROTO_TCP)
		c = bpf_map_lookup_elem(&embryos, &p->flow);
	if (!c)
		return reply_path(ctx, p, G_PASS_ICMP);
	count_global(G_ICMP_FWD);
	return forward_tracked(ctx, p, c->real_id, c->svc_id);
}

static __always_inline void frag_key_of(struct frag_key *k, const struct pkt *p)
{
	__builtin_memcpy(k->src, p->flow.src, 16);
	__builtin_memcpy(k->dst, p->flow.dst, 16);
	k->id = p->ip_id;
	k->proto = p->flow.proto;
	k->family = p->flow.family;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

static __always_inline int handle_later_frag(struct xdp_md *ctx, struct pkt *p)
{
	struct frag_key k;
	frag_key_of(&k, p);
	struct frag_val *v = bpf_map_lookup_elem(&frags, &k);
	if (!v || age_ns(coarse_now(), v->last_ns) > frag_timeout()) {
		count_global(G_PASS_FRAG_MISS);
		return XDP_PASS;
	}
	count_global(G_FRAG_FWD);
	return forward_tracked(ctx, p, v->real_id, v->svc_id);
}

/* Reports whether the frame is not unicast to the ingress interface's MAC
 * (when user space registered that interface): unicast to another host, or
 * broadcast and multicast, which every director on the segment receives and
 * must not all balance. The kernel gets them (ARP, VRRP, NDP). *flags gets
 * the interface's IF_F_*; the fwmark interface's MAC is not checked, as its
 * destination MAC carries the mark. */
static __always_inline int for_other_host(struct xdp_md *ctx, __u8 *flags)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 slot = ifindex & (IF_MAC_SLOTS - 1);
	const __u8 *own = NULL;
	struct if_mac_slot *s = bpf_map_lookup_elem(&if_mac_slots, &slot);
	if (s && s->ifindex == ifindex) {
		own = s->addr;
		*flags = s->flags;
	} else {
		struct if_mac *m = bpf_map_lookup_elem(&if_macs, &ifindex);
		if (m) {
			own = m->addr;
			*flags = m->flags;
		}
	}
	if (!own || (*flags & IF_F_FWMARK))
		return 0;
	__u8 *dst = (void *)(long)ctx->data;
	if ((void *)(dst + ETH_ALEN) > (void *)(long)ctx->data_end)
		return 0; /* the parser deals with runts */
	if (dst[0] & 1)
		return 1; /* broadcast and multicast */
	return dst[0] != own[0] || dst[1] != own[1] || dst[2] != own[2] || dst[3] != own[3] || dst[4] != own[4] ||
	       dst[5] != own[5];
}

/* note_conn tells connection sync about an entry the program made, when a
 * reader is there: new flows reach the other directors at once, with no
 * table scan. A global function, checked once by the verifier. */
__noinline int note_conn(struct flow *f, __u32 real_id, __u32 svc_id, __u32 flags)
{
	__u32 zero = 0;
	struct conn_events_ctl *ctl = bpf_map_lookup_elem(&conn_events_ctl, &zero);
	if (!f || !ctl || !ctl->on)
		return 0;
	struct conn_event ev = {.real_id = real_id, .svc_id = svc_id, .flags = flags};
	__builtin_memcpy(&ev.flow, f, sizeof(ev.flow));
	if (bpf_ringbuf_output(&conn_events, &ev, sizeof(ev), 0))
		__sync_fetch_and_add(&ctl->lost, 1);
	return 0;
}

/* embryo_take follows an embryonic flow (a SYN seen, nothing else yet):
 * it returns the real server its SYN went to, or 0 when there is none
 * (or it expired, or belongs to another service). With promote (the
 * client's next packet) the flow moves to the connection table. A global
 * function: the verifier checks it once, apart from govs_xdp's paths. */
__noinline int embryo_take(struct flow *f, __u32 svc_id, __u64 now, int promote, int fin)
{
	if (!f)
		return 0;
	struct conn *e = bpf_map_lookup_elem(&embryos, f);
	if (!e)
		return 0;
	if (e->svc_id != svc_id || age_ns(now, e->last_ns) > EMBRYO_TIMEOUT_NS) {
		if (e->flags & CONN_F_ACTIVE) {
			e->flags &= ~CONN_F_ACTIVE;
			active_add(e->real_id, -1);
		}
		bpf_map_delete_elem(&embryos, f);
		return 0;
	}
	__u32 real_id = e->real_id;
	if (!promote) {
		if (age_ns(now, e->last_ns) > REFRESH_NS)
			e->last_ns = now;
		return real_id;
	}
	struct conn ec = *e;
	ec.flags &= ~CONN_F_EMBRYO;
	ec.last_ns = now;
	if (fin && !(ec.flags & CONN_F_FIN)) {
		if (ec.flags & CONN_F_ACTIVE)
			active_add(real_id, -1);
		ec.flags = (ec.flags & ~CONN_F_ACTIVE) | CONN_F_FIN;
	}
	bpf_map_update_elem(&conns, f, &ec, BPF_ANY);
	bpf_map_delete_elem(&embryos, f);
	note_conn(f, real_id, svc_id, ec.flags);
	return real_id;
}

/* lookup_fwmark finds the fwmark service of a frame from the fwmark
 * interface: the mark is in its destination MAC, the family is the
 * packet's. */
static __always_inline struct svc_ref *lookup_fwmark(struct xdp_md *ctx, const struct pkt *p)
{
	__u8 *data = (void *)(long)ctx->data;
	if ((void *)(data + ETH_ALEN) > (void *)(long)ctx->data_end)
		return NULL;
	struct svc_key sk = {};
	__builtin_memcpy(sk.addr, data + FWMARK_MAC_OFF, 4);
	sk.family = p->flow.family;
	return bpf_map_lookup_elem(&services, &sk);
}

/* balance is govs_xdp for a frame that is for this host; fwmark says it
 * came from the fwmark interface. */
/* same_addr compares two 16-byte addresses (clang does not inline memcmp
 * for BPF). */
static __always_inline int same_addr(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

static __always_inline int balance(struct xdp_md *ctx, int fwmark)
{
	struct pkt p = {};
	switch (parse_packet(ctx, &p)) {
	case PARSE_OK:
		break;
	case PARSE_NOT_IP:
		count_global(G_PASS_NOT_IP);
		return XDP_PASS;
	case PARSE_V6_EXT:
		count_global(G_PASS_V6_EXT);
		return XDP_PASS;
	case PARSE_OTHER:
		count_global(G_PASS_NO_SERVICE);
		return XDP_PASS;
	default:
		count_global(G_PASS_MALFORMED);
		return XDP_PASS;
	}
	if (p.icmp)
		return handle_icmp(ctx, &p);
	if (p.frag == FRAG_LATER)
		return handle_later_frag(ctx, &p);

	/* Connection first, as IPVS does: an established flow's entry names
	 * its service, which svc_live confirms still has the flow's address,
	 * protocol and port (or any port), so the services hash is not looked
	 * up. A flow keeps its service while that holds, even if a service
	 * for its exact port was added since it started on an any-port one
	 * (IPVS behaves the same). Packets for addresses no service has
	 * (vip_filter) skip this. */
	struct conn *c = NULL;
	int conn_looked = 0;
	__u32 svc_id = 0, gen = 0;
	int have_svc = 0;
	if (!fwmark && vip_maybe(p.flow.dst)) {
		c = bpf_map_lookup_elem(&conns, &p.flow);
		conn_looked = 1;
		if (c) {
			__u32 cid = c->svc_id;
			struct svc_live_val *l = bpf_map_lookup_elem(&svc_live, &cid);
			if (l && l->key.family == p.flow.family && l->key.proto == p.flow.proto &&
			    (l->key.port == p.flow.dport || l->key.port == 0) &&
			    same_addr(l->key.addr, p.flow.dst)) {
				svc_id = cid;
				gen = l->gen;
				have_svc = 1;
			}
		}
	}
	if (!have_svc) {
		struct svc_ref *ref;
		if (fwmark) {
			ref = lookup_fwmark(ctx, &p);
			if (!ref) {
				count_global(G_FWMARK_MISS);
				return XDP_DROP;
			}
		} else {
			struct svc_key sk = {};
			__builtin_memcpy(sk.addr, p.flow.dst, 16);
			sk.port = p.flow.dport;
			sk.proto = p.flow.proto;
			sk.family = p.flow.family;
			ref = bpf_map_lookup_elem(&services, &sk);
			if (!ref) {
				sk.port = 0;
				ref = bpf_map_lookup_elem(&services, &sk);
				if (!ref)
					return reply_path(ctx, &p, G_PASS_NO_SERVICE);
			}
		}
		svc_id = ref->id;
		gen = ref->gen;
	}
	__u32 slot = svc_id * 2 + (gen & 1);
	struct svc_meta *m = bpf_map_lookup_elem(&svc_metas, &slot);
	if (!m)
		return drop(svc_id, DROP_NO_TABLE);

	__u64 now = coarse_now();
	int fin = p.flow.proto == IPPROTO_TCP && (p.tcp_flags & (TCP_FL_FIN | TCP_FL_RST));
	__u32 real_id = 0;
	struct real *r = NULL;
	int new_conn = 0;
	int learn = 0; /* NAT: record where replies go */
	/* Only a SYN: the flow starts (or its SYN is retransmitted). */
	int bare_syn = p.flow.proto == IPPROTO_TCP && (p.tcp_flags & (TCP_FL_SYN | TCP_FL_ACK)) == TCP_FL_SYN;

	/* One-packet scheduling (ops, UDP): every datagram is scheduled on its
	 * own (persistence still applies) and leaves no connection entry. */
	int ops = m->flags & SVC_F_OPS;
	if (ops)
		c = NULL;
	else if (!conn_looked)
		c = bpf_map_lookup_elem(&conns, &p.flow);
	if (c) {
		if (age_ns(now, c->last_ns) > timeout_for(&p.flow, c->flags)) {
			/* Expired: give back its active count, then schedule afresh. */
			if (c->flags & CONN_F_ACTIVE) {
				c->flags &= ~CONN_F_ACTIVE;
				active_add(c->real_id, -1);
			}
		} else {
			real_id = c->real_id;
			r = real_of(real_id);
			/* A SYN on a closed connection's tuple is a new connection
			 * reusing the client port: schedule it afresh, as IPVS's
			 * conn_reuse_mode does, rather than send it to a server that
			 * may have left since (weight 0, or dead and inhibited). A
			 * bare SYN on a server taking no new flows (weight 0) is
			 * scheduled afresh too, as with IPVS's expire_nodest_conn:
			 * an entry another director synced may never have seen the
			 * old connection's FIN. */
			int reuse = p.flow.proto == IPPROTO_TCP && (p.tcp_flags & TCP_FL_SYN) &&
				    ((c->flags & CONN_F_FIN) || (bare_syn && r && r->weight == 0));
			if (r && c->svc_id == svc_id && !reuse) {
				if (age_ns(now, c->last_ns) > REFRESH_NS) {
					c->last_ns = now;
					learn = 1;
				}
				if (c->flags & CONN_F_NAT_LEARN) {
					c->flags &= ~CONN_F_NAT_LEARN;
					learn = 1;
				}
				if (fin && !(c->flags & CONN_F_FIN)) {
					if (c->flags & CONN_F_ACTIVE)
						active_add(real_id, -1);
					c->flags = (c->flags & ~CONN_F_ACTIVE) | CONN_F_FIN;
					c->last_ns = now;
				}
				if (m->flags & SVC_F_PERSIST) {
					struct persist_key pk;
					persist_key_of(&pk, m, &p, svc_id);
					struct persist_val *pv = bpf_map_lookup_elem(&persist, &pk);
					if (pv && pv->real_id == real_id && age_ns(now, pv->last_ns) > REFRESH_NS)
						pv->last_ns = now;
				}
			} else {
				r = NULL;
				real_id = 0;
			}
		}
	}

	if (!c && !ops && p.flow.proto == IPPROTO_TCP) {
		real_id = embryo_take(&p.flow, svc_id, now, !bare_syn, fin);
		learn = !bare_syn;
		if (real_id) {
			r = real_of(real_id);
			if (!r)
				real_id = 0;
		}
	}

	/* tracked: the new flow gets an entry. Over the new-flow limit (a
	 * flood of new flows, each evicting an established one from a full
	 * table and costing an insert) it does not: a hash-scheduled service
	 * forwards it as ops does, where the table sends it anyway; a
	 * service that needs the entry (other schedulers, NAT, FullNAT)
	 * drops it. */
	int tracked = 1;
	if (!r) {
		new_conn = 1;
		if (!ops && !flow_admitted(now)) {
			if (!hash_scheduled(m)) {
				count_global(G_FLOWS_REFUSED);
				return XDP_DROP;
			}
			tracked = 0;
		}
		struct persist_key pk;
		if (m->flags & SVC_F_PERSIST) {
			persist_key_of(&pk, m, &p, svc_id);
			struct persist_val *pv = bpf_map_lookup_elem(&persist, &pk);
			if (pv && age_ns(now, pv->last_ns) <= m->persist_ns) {
				__u32 id = pv->real_id;
				struct real *pr = real_of(id);
				/* Weight 0 ends persistence (IPVS's expire_quiescent_template). */
				if (pr && pr->weight > 0) {
					real_id = id;
					r = pr;
					pv->last_ns = now;
				}
			}
		}
		if (!r) {
			real_id = schedule(m, slot, svc_id, &p);
			if (real_id == 0)
				return drop(svc_id, DROP_NO_REAL);
			r = real_of(real_id);
			if (!r)
				return drop(svc_id, DROP_REAL_MISSING);
			if ((m->flags & SVC_F_PERSIST) && tracked) {
				struct persist_val pv = {.real_id = real_id, .last_ns = now};
				bpf_map_update_elem(&persist, &pk, &pv, BPF_ANY);
			}
		}
		/* NAT and FullNAT replies need the flow's entries. */
		if (!tracked && (r->flags & (REAL_F_NAT | REAL_F_FNAT))) {
			count_global(G_FLOWS_REFUSED);
			return XDP_DROP;
		}
		struct conn nc = {
			.real_id = real_id,
			.svc_id = svc_id,
			.flags = fin ? CONN_F_FIN : CONN_F_ACTIVE,
			.last_ns = now,
		};
		if (ops) {
			/* no entry */
		} else if (!tracked) {
			count_global(G_FLOWS_UNTRACKED);
			/* A closed or expired entry of the tuple must not catch
			 * the flow's next packets. */
			if (c)
				bpf_map_delete_elem(&conns, &p.flow);
		} else if (bare_syn) {
			nc.flags |= CONN_F_EMBRYO;
			bpf_map_update_elem(&embryos, &p.flow, &nc, BPF_ANY);
			/* A closed or stale entry of the same tuple must not
			 * shadow the new flow once it is established. */
			if (c)
				bpf_map_delete_elem(&conns, &p.flow);
		} else {
			bpf_map_update_elem(&conns, &p.flow, &nc, BPF_ANY);
			note_conn(&p.flow, real_id, svc_id, nc.flags);
		}
		if (!fin && !ops && tracked)
			active_add(real_id, 1);
	}

	if (p.frag == FRAG_FIRST) {
		struct frag_key fk;
		frag_key_of(&fk, &p);
		struct frag_val fv = {.real_id = real_id, .svc_id = svc_id, .last_ns = now};
		bpf_map_update_elem(&frags, &fk, &fv, BPF_ANY);
	}
	if ((r->flags & REAL_F_NAT) && (learn || new_conn))
		nat_learn(ctx, &p, svc_id, real_id, now);
	if (r->flags & REAL_F_FNAT) {
		struct fnat_req q = {.slot = slot, .svc_id = svc_id, .real_id = real_id, .now = now,
				     .state = (bare_syn ? CONN_F_EMBRYO : 0) | (fin ? CONN_F_FIN : 0) | (new_conn ? FNAT_NEW : 0)};
		if (fnat_prepare(ctx, &p, &q)) {
			count_global(G_FNAT_NO_PORT);
			return XDP_DROP;
		}
	}
	return forward(ctx, &p, r, svc_id, real_id, new_conn);
}

SEC("xdp")
int govs_xdp(struct xdp_md *ctx)
{
	__u8 flags = 0;
	if (for_other_host(ctx, &flags)) {
		count_global(G_PASS_OTHER_HOST);
		return XDP_PASS;
	}
	int fwmark = flags & IF_F_FWMARK;
	int verdict = balance(ctx, fwmark);
	/* The kernel routed this frame here by its mark: passed back, it
	 * would be routed here again. */
	if (fwmark && verdict == XDP_PASS)
		return XDP_DROP;
	return verdict;
}

/* govs_clock writes bpf_ktime_get_ns() into the first 8 bytes of a test
 * frame (BPF_PROG_TEST_RUN only, never attached): user space reads the
 * program's clock through it rather than CLOCK_MONOTONIC, which a time
 * namespace may offset while the program's clock is the host's. */
SEC("xdp")
int govs_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + sizeof(__u64) > end)
		return XDP_ABORTED;
	__u64 now = bpf_ktime_get_ns();
	__builtin_memcpy(data, &now, sizeof(now));
	return XDP_PASS;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Helper programs for bench/dataplane: a packet generator for
 * BPF_PROG_TEST_RUN's live-frames mode, a counting sink and a pass-through.
 * Not part of the balancer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "structs.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FRAME_LEN 60  /* IPv4: Ethernet, IPv4, UDP, 18 bytes of payload */
#define FRAME6_LEN 62 /* IPv6: Ethernet, IPv6, UDP, no payload */
#define FRAME_MAX 64
#define SPORT_OFF (14 + 20)
#define SPORT6_OFF (14 + 40)

struct gen_frame {
	__u8 data[FRAME_MAX];
	__u16 flows; /* distinct ports to cycle through */
	__u16 base_port;
	__u16 dport; /* 1: cycle the destination port (replies), 0: the source port */
	__u8 v6;     /* 1: data is an IPv6 frame of FRAME6_LEN bytes */
	/* spread, when 1, gives each CPU its own flows (base_port + cpu *
	 * flows; with many, bit 29 of the flow number for CPU 1): generators
	 * on two CPUs then send distinct flows, as RSS would spread them. */
	__u8 spread;
	/* many, when not 0, replaces flows: that many distinct flows over the
	 * source port and the source address's last two bytes (~0: every
	 * packet a new flow). IPv4 only. */
	__u32 many;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_frame);
} frame SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} received SEC(".maps");

/* fold16 folds a 32-bit one's-complement sum to 16 bits. */
static __always_inline __u16 fold16(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* gen_v6 writes the IPv6 frame with the source port set to port; the UDP
 * checksum (mandatory over IPv6) is updated for the changed port. */
static __always_inline int gen_v6(void *data, void *data_end, struct gen_frame *f, __u16 port)
{
	if (data + FRAME6_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, f->data, FRAME6_LEN);
	__be16 *p = (__be16 *)(data + SPORT6_OFF);
	__be16 old = *p;
	__be16 new = bpf_htons(port);
	*p = new;
	__u16 *ck = (__u16 *)(data + SPORT6_OFF + 6);
	__u16 c = ~fold16((__u16)~*ck + (__u16)~old + (__u16)new);
	*ck = c ? c : 0xffff;
	return XDP_TX;
}

/* Live-frames mode reuses pages, so the whole frame is rewritten each run. */
SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_frame *f = bpf_map_lookup_elem(&frame, &zero);
	__u64 *n = bpf_map_lookup_elem(&seq, &zero);
	if (!f || !n)
		return XDP_ABORTED;
	__u16 flows = f->flows ? f->flows : 1;
	__u16 port = f->base_port + (__u16)(*n % flows);
	if (f->spread)
		port += (__u16)(bpf_get_smp_processor_id() * flows);
	if (f->v6) {
		*n += 1;
		return gen_v6(data, data_end, f, port);
	}
	if (data + FRAME_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, f->data, FRAME_LEN);
	if (f->many) {
		__u64 k = f->many == ~0U ? *n : *n % f->many;
		*n += 1;
		if (f->spread)
			k |= (__u64)(bpf_get_smp_processor_id() & 1) << 29;
		*(__be16 *)(data + SPORT_OFF) = bpf_htons(f->base_port + (__u16)k);
		/* 198.18.1.2 becomes 198.18.(1 + k>>24).(k>>16): the IPv4
		 * header checksum is updated for the changed 16 bits. */
		__be16 *w = (__be16 *)(data + 14 + 14);
		__be16 old = *w;
		__be16 new = bpf_htons((__u16)(((1 + ((k >> 24) & 0x3f)) << 8) | ((k >> 16) & 0xff)));
		*w = new;
		__u16 *ck = (__u16 *)(data + 14 + 10);
		*ck = ~fold16((__u16)~*ck + (__u16)~old + (__u16)new);
		return XDP_TX;
	}
	*n += 1;
	*(__be16 *)(data + SPORT_OFF + (f->dport ? 2 : 0)) = bpf_htons(port);
	return XDP_TX;
}

struct fwd {
	__u8 dst[6];
	__u8 src[6];
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd);
} fwd_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

/* The least a forwarder can do: rewrite both MACs and redirect. The
 * baseline govs's own lookups are measured against. */
SEC("xdp")
int bench_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fwd *f = bpf_map_lookup_elem(&fwd_cfg, &zero);
	if (!f || data + 12 > data_end)
		return XDP_DROP;
	__builtin_memcpy(data, f->dst, 6);
	__builtin_memcpy(data + 6, f->src, 6);
	return bpf_redirect_map(&ports, f->ifindex, XDP_DROP);
}

/* The floor of an L4 balancer with a connection table: what bench_redirect
 * does plus parsing Ethernet, IPv4 and the ports and one LRU hash lookup of
 * the 5-tuple, keyed as govs keys its connections (struct flow); a miss
 * inserts the flow. No service, scheduling, timeouts or counters. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow);
	__type(value, struct fwd);
} floor_conns SEC(".maps");

SEC("xdp")
int bench_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 14 + 20 + 4 > data_end)
		return XDP_PASS;
	if (*(__be16 *)(data + 12) != bpf_htons(0x0800))
		return XDP_PASS;
	__u8 *ip = data + 14;
	if ((ip[0] & 0x0f) != 5 || (ip[9] != 6 && ip[9] != 17))
		return XDP_PASS;
	struct flow k = {};
	__builtin_memcpy(k.src, ip + 12, 4);
	__builtin_memcpy(k.dst, ip + 16, 4);
	k.sport = *(__be16 *)(ip + 20);
	k.dport = *(__be16 *)(ip + 22);
	k.proto = ip[9];
	k.family = FAMILY_V4;
	struct fwd *f = bpf_map_lookup_elem(&floor_conns, &k);
	if (!f) {
		__u32 zero = 0;
		f = bpf_map_lookup_elem(&fwd_cfg, &zero);
		if (!f)
			return XDP_DROP;
		bpf_map_update_elem(&floor_conns, &k, f, BPF_ANY);
	}
	__builtin_memcpy(data, f->dst, 6);
	__builtin_memcpy(data + 6, f->src, 6);
	return bpf_redirect_map(&ports, f->ifindex, XDP_DROP);
}

SEC("xdp")
int bench_count_drop(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&received, &zero);
	if (c)
		*c += 1;
	return XDP_DROP;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map the balancer uses. User space (internal/dataplane) owns their
 * contents; the program only reads them, except connection, persistence,
 * fragment and counter state. */
#ifndef GOVS_MAPS_H
#define GOVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES * 2); /* port entries + any-port entries */
	__type(key, struct svc_key);
	__type(value, struct svc_ref);
} services SEC(".maps");

/* Indexed by slot (id * 2 + gen). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES * 2);
	__type(key, __u32);
	__type(value, struct svc_meta);
} svc_metas SEC(".maps");

/* Per-slot lookup table: real ids (Maglev ring, or weighted sequence for rr). */
struct table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TABLE);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SERVICES * 2);
	__type(key, __u32);
	__array(values, struct table);
} tables SEC(".maps");

/* A hash, not an array, so that replacing an entry is atomic for readers. */
/* The services by id (see struct svc_live). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_live_val);
} svc_live SEC(".maps");

/* A set bit per hash of the services' addresses (vip_hash): packets for an
 * address no service has skip the connection-first lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << VIP_FILTER_BITS);
	__type(key, __u32);
	__type(value, __u32);
} vip_filter SEC(".maps");

/* vip_hash is the vip_filter slot of a 16-byte address (user space
 * computes the same: dataplane.vipSlot). */
static __always_inline __u32 vip_hash(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;
	return ((w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9E3779B1U) >> (32 - VIP_FILTER_BITS);
}

static __always_inline int vip_maybe(const __u8 *a)
{
	__u32 slot = vip_hash(a);
	__u32 *v = bpf_map_lookup_elem(&vip_filter, &slot);
	return v && *v;
}

/* An array, not a hash: its lookups are inlined (a hash lookup costs
 * ~30 ns a packet). An id user space has not written, or has cleared, is
 * all zeros: real_of says it is absent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
} reals SEC(".maps");

/* real_of is real id's entry, or NULL when there is none (every real has
 * an address: the real server's, also in DR). */
static __always_inline struct real *real_of(__u32 id)
{
	struct real *r = bpf_map_lookup_elem(&reals, &id);
	if (!r)
		return NULL;
	const __u64 *a = (const __u64 *)r->addr;
	return (a[0] | a[1]) ? r : NULL;
}

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* The MAC of every interface the program is attached to. A frame for
 * another unicast MAC is not ours even when it reaches us (a switch floods
 * it, the NIC is promiscuous, or it is a veth, which hands XDP every frame):
 * it goes to the kernel, which drops it, as IPVS never sees it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, struct if_mac);
} if_macs SEC(".maps");

/* The same MACs in an array by ifindex & (IF_MAC_SLOTS - 1): array lookups
 * are inlined by the JIT (about 1 ns) where a hash lookup costs 20 ns per
 * packet. if_macs answers when two interfaces share a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IF_MAC_SLOTS);
	__type(key, __u32);
	__type(value, struct if_mac_slot);
} if_mac_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONN_TABLE_SIZE);
	__type(key, struct flow);
	__type(value, struct conn);
} conns SEC(".maps");

/* New connection-table entries, for connection sync (struct conn_event).
 * Only written while conn_events_ctl says a reader is there; when the ring
 * is full a record is lost and counted, and sync's periodic table scan
 * sends the entry instead. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CONN_EVENTS_BYTES);
} conn_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn_events_ctl);
} conn_events_ctl SEC(".maps");

/* NAT replies, keyed by the reply's flow (real -> client). As large as the
 * connection table: every NAT connection has one entry in each. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONN_TABLE_SIZE);
	__type(key, struct flow);
	__type(value, struct nat_back);
} nat_backs SEC(".maps");

/* FullNAT (bpf/fnat.h). fnat_backs is a plain hash allocated as used: a
 * live entry is a local port taken, never evicted; expired entries are
 * taken over by new connections and swept by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FNAT_TABLE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow);
	__type(value, struct fnat_back);
} fnat_backs SEC(".maps");

/* Also allocated as used; an entry goes with its fnat_backs entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FNAT_TABLE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow);
	__type(value, struct fnat_fwd);
} fnat_fwds SEC(".maps");

/* Every FullNAT service's local addresses (key: address and family, as in
 * svc_key with port and proto 0): TCP and UDP to one of them on a local
 * port that no connection has are dropped, not passed to a kernel that
 * would reset the real server's side of a connection this director has not
 * seen yet (one another director made, before its first packet here). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES * MAX_LADDRS);
	__type(key, struct svc_key);
	__type(value, __u8);
} local_addrs SEC(".maps");

/* By service slot (id * 2 + gen), like svc_metas. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES * 2);
	__type(key, __u32);
	__type(value, struct svc_laddrs);
} svc_laddrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LOCALITY_TABLE_SIZE);
	__type(key, struct loc_key);
	__type(value, struct loc_val);
} locality SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EMBRYO_TABLE_SIZE);
	__type(key, struct flow);
	__type(value, struct conn);
} embryos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PERSIST_TABLE_SIZE);
	__type(key, struct persist_key);
	__type(value, struct persist_val);
} persist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG_TABLE_SIZE);
	__type(key, struct frag_key);
	__type(value, struct frag_val);
} frags SEC(".maps");

/* Active connections per real id, for lc/wlc (shared, atomically updated). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, __s64);
} active_conns SEC(".maps");

/* Connections user space found gone (expired, or evicted from the LRU
 * connection table) that active_conns still counts; lc/wlc use
 * active_conns - expired_conns. Only user space writes it, so neither side
 * needs the other's atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, __s64);
} expired_conns SEC(".maps");

/* rr/wrr position per service id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} rr_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_limit);
} flow_guard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_stats);
} svc_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_stats);
} real_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, G_MAX);
	__type(key, __u32);
	__type(value, __u64);
} global_stats SEC(".maps");

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map keys and values. Addresses are 16 bytes; IPv4 uses the first 4. */
#ifndef GOVS_STRUCTS_H
#define GOVS_STRUCTS_H

#include <linux/types.h>
#include "consts.h"

/* A transport flow as the client sent it; the connection table key. */
struct flow {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct svc_key {
	__u8 addr[16];
	__be16 port; /* 0: any port of the address */
	__u8 proto;  /* 0: a fwmark service; addr holds the mark (4 bytes, network order) */
	__u8 family;
};

/* Value of the services map: which id and which of its two state slots is
 * live. Rewriting this one entry switches a service atomically. */
struct svc_ref {
	__u32 id;
	__u32 gen; /* 0 or 1; slot = id * 2 + gen */
};

/* svc_live value, by service id: the service's key and its live slot's
 * generation, as in the services map (all zeros: no such service). The
 * connection-first lookup checks an entry's service here. */
struct svc_live_val {
	struct svc_key key;
	__u32 gen;
};

struct svc_real {
	__u32 id;
	__u32 weight;
};

struct svc_meta {
	__u32 sched;     /* enum govs_sched */
	__u32 flags;     /* SVC_F_* */
	__u32 table_len; /* used entries of the slot's lookup table */
	__u32 nreals;
	__u64 persist_ns; /* persistence_timeout */
	__u8 persist_mask[16]; /* persistence_granularity as a byte mask */
	struct svc_real reals[MAX_SVC_REALS];
};

/* An interface's own MAC (if_macs value). */
struct if_mac {
	__u8 addr[6];
	__u8 flags; /* IF_F_* */
	__u8 pad;
};

/* if_mac_slots value: an interface's MAC in the array slot its ifindex
 * hashes to (ifindex 0: empty). */
struct if_mac_slot {
	__u32 ifindex;
	__u8 addr[6];
	__u8 flags; /* IF_F_* */
	__u8 pad;
};

struct real {
	__u8 dst_mac[6]; /* real server's (or TUN next hop's) MAC */
	__u8 src_mac[6]; /* egress interface's MAC */
	__u32 ifindex;   /* egress interface; 0 or ingress: XDP_TX */
	__u32 flags;     /* REAL_F_* */
	__u32 weight;    /* 0: no new flows (also ends persistence) */
	__u8 addr[16];   /* TUN outer destination; NAT: the real server's address */
	__u8 tun_src[16]; /* TUN outer source (director address) */
	__be16 port;     /* NAT: the real server's port (0: the service's) */
	__u8 pad[2];
};

/* nat_backs value: how a NAT real server's reply (the key is its flow,
 * real -> client) turns back into the service's, and where it goes: to the
 * MAC and interface the client's packets came from. */
struct nat_back {
	__u8 vaddr[16];
	__be16 vport;
	__u8 mac[6];     /* source MAC of the client's last packet (its router) */
	__u32 ifindex;   /* interface it came in on; 0: not learnt yet (synced) */
	__u32 svc_id;
	__u32 real_id;
	__u32 pad;
	__u64 last_ns;
};

/* fnat_backs value, keyed by the reply's flow (real:port -> local
 * address:port): the FullNAT connection it belongs to, and where its
 * client's packets came from. A plain hash, not an LRU: an entry is a local
 * port in use, which must not be taken while it lives. */
struct fnat_back {
	__u8 vaddr[16];
	__u8 caddr[16];
	__be16 vport;
	__be16 cport;
	__u8 mac[6];   /* source MAC of the client's packets (its router) */
	__u32 ifindex; /* interface they came in on */
	__u32 svc_id;
	__u32 real_id;
	__u32 flags; /* CONN_F_EMBRYO, CONN_F_FIN: which timeout applies */
	__u64 last_ns;
};

/* fnat_fwd value, keyed by the client's flow: the local address and port
 * its packets leave with. */
struct fnat_fwd {
	__u8 laddr[16];
	__be16 lport;
	__be16 rport; /* the real server's port the reverse key holds */
	__u32 real_id;
	__u32 flags; /* as fnat_back's */
	__u32 pad;
	__u64 last_ns;
};

/* svc_laddrs value (by service slot): a FullNAT service's local addresses. */
struct svc_laddrs {
	__u32 n;
	__u32 pad;
	__u8 addr[MAX_LADDRS][16];
};

/* conn_events record: a connection-table entry the program made (a new
 * flow, or an embryonic one promoted), for connection sync to send at once
 * instead of finding it by scanning the table. */
struct conn_event {
	struct flow flow;
	__u32 real_id;
	__u32 svc_id;
	__u32 flags; /* CONN_F_* of the entry */
	__u32 pad;
};

/* conn_events_ctl value: user space sets on while it reads conn_events;
 * the program counts the records the full ring could not take. */
struct conn_events_ctl {
	__u32 on;
	__u32 pad;
	__u64 lost;
};

struct conn {
	__u32 real_id;
	__u32 svc_id;
	__u32 flags; /* CONN_F_* */
	__u32 pad;
	__u64 last_ns;
};

/* lblc / lblcr: the real servers a destination address is served by. */
#define LOC_SET 4
struct loc_key {
	__u8 dst[16];
	__u32 svc_id;
	__u32 family;
};

struct loc_val {
	__u32 ids[LOC_SET]; /* lblc uses ids[0]; 0: empty */
	__u64 lastmod_ns;   /* lblcr: when the set last changed */
	__u64 last_ns;      /* last use */
};

struct persist_key {
	__u8 addr[16]; /* client address & persist_mask */
	__u32 svc_id;
	__u32 family;
};

struct persist_val {
	__u32 real_id;
	__u32 pad;
	__u64 last_ns;
};

struct frag_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 id; /* IPv4: 16 bits; IPv6 fragment header: 32 bits */
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct frag_val {
	__u32 real_id;
	__u32 svc_id;
	__u64 last_ns;
};

struct config {
	__u64 tcp_timeout_ns;
	__u64 tcp_fin_timeout_ns;
	__u64 udp_timeout_ns;
	__u64 frag_timeout_ns;
};

/* The new-flow limit (flow_guard value): at most limit connection and
 * embryonic entries made per second, over all CPUs (0: no limit); second
 * and made count the current second's. */
struct flow_limit {
	__u64 limit;
	__u64 second;
	__u64 made;
};

struct svc_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_conns;
	__u64 drops[DROP_MAX];
	__u64 out_packets; /* NAT replies sent back to clients */
	__u64 out_bytes;
};

struct real_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_conns;
	__u64 out_packets;
	__u64 out_bytes;
};

#endif

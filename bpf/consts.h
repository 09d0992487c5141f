/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Sizes and enumerations shared by the govs XDP balancer and its Go loader.
 * Every size can be overridden at compile time (-DMAX_SERVICES=...); the Go
 * side reads the real sizes from the compiled object's map specs. */
#ifndef GOVS_CONSTS_H
#define GOVS_CONSTS_H

/* Virtual services (VIP, port, protocol). Each owns two state slots
 * (double buffering), so state maps have 2 * MAX_SERVICES entries. */
#ifndef MAX_SERVICES
#define MAX_SERVICES 256
#endif

/* Real-server ids are per (service, real server); id 0 means "none". */
#ifndef MAX_REALS
#define MAX_REALS 4096
#endif

/* Real servers of one service that lc/wlc can choose from. */
#ifndef MAX_SVC_REALS
#define MAX_SVC_REALS 64
#endif

/* Upper bound of a service's lookup table (Maglev ring or wrr sequence). */
#ifndef MAX_TABLE
#define MAX_TABLE 131071
#endif

#ifndef CONN_TABLE_SIZE
#define CONN_TABLE_SIZE 262144
#endif

/* Embryonic TCP flows (a SYN seen, nothing else from the client yet) live
 * in their own table, so a SYN flood churns it and never evicts an
 * established connection. */
#ifndef EMBRYO_TABLE_SIZE
#define EMBRYO_TABLE_SIZE 65536
#endif

/* Ring of new connections for connection sync: 4 MiB holds about 65,000
 * records (56 bytes and an 8-byte header each), more than a second of new
 * flows at the rates the sync sender keeps up with. A power of two. */
#ifndef CONN_EVENTS_BYTES
#define CONN_EVENTS_BYTES (4 << 20)
#endif

#ifndef PERSIST_TABLE_SIZE
#define PERSIST_TABLE_SIZE 65536
#endif

#ifndef LOCALITY_TABLE_SIZE
#define LOCALITY_TABLE_SIZE 65536
#endif

#ifndef FRAG_TABLE_SIZE
#define FRAG_TABLE_SIZE 8192
#endif

/* vip_filter: 2^VIP_FILTER_BITS slots, one per hash of a destination
 * address; a slot is set when some service's address hashes to it. */
#define VIP_FILTER_BITS 10

/* if_mac_slots: an array slot per ifindex & (IF_MAC_SLOTS - 1). */
#define IF_MAC_SLOTS 256

#ifndef MAX_IFACES
#define MAX_IFACES 64
#endif

/* Defaults when the config map is left zero (e.g. in unit tests). */
#define DEFAULT_TCP_TIMEOUT_NS (900ULL * 1000000000ULL)
#define DEFAULT_TCP_FIN_TIMEOUT_NS (120ULL * 1000000000ULL)
#define DEFAULT_UDP_TIMEOUT_NS (300ULL * 1000000000ULL)
#define DEFAULT_FRAG_TIMEOUT_NS (30ULL * 1000000000ULL)
/* lblc / lblcr: a destination's entry unused this long is forgotten, and an
 * lblcr set larger than one sheds its busiest server this often (IPVS's
 * lblc_expiration and lblcr_expiration, 24 hours). */
#define LOCALITY_EXPIRE_NS (24ULL * 3600ULL * 1000000000ULL)
/* An embryonic flow whose handshake never completes, as IPVS's SYN_RECV. */
#define EMBRYO_TIMEOUT_NS (60ULL * 1000000000ULL)
/* Timestamps of live entries are rewritten at most this often, so a busy
 * flow does not dirty a shared cache line on every packet. */
#define REFRESH_NS 1000000000ULL

#define FAMILY_V4 4
#define FAMILY_V6 6

/* Schedulers (enum govs_sched mirrored in Go). */
enum govs_sched {
	SCHED_NONE = 0,
	SCHED_MH = 1, /* Maglev on the 5-tuple */
	SCHED_SH = 2, /* Maglev-style table on the source address */
	SCHED_DH = 3, /* Maglev-style table on the destination address */
	SCHED_RR = 4, /* per-CPU counter over a weighted sequence (rr and wrr) */
	SCHED_LC = 5,
	SCHED_WLC = 6,
	SCHED_SED = 7, /* fewest (active + 1) / weight */
	SCHED_NQ = 8,  /* an idle server first, else as sed */
	SCHED_FO = 9,  /* highest weight */
	SCHED_OVF = 10, /* highest weight with active <= weight */
	SCHED_LBLC = 11, /* locality-based least connection (by destination address) */
	SCHED_LBLCR = 12, /* the same, with a set of servers per destination */
	SCHED_TWOS = 13, /* the less loaded of two weighted random picks */
};

/* svc_meta.flags */
#define SVC_F_PERSIST (1U << 0)
#define SVC_F_HASH_PORT (1U << 1) /* sh, mh: hash the source port too (sh-port, mh-port) */
#define SVC_F_OPS (1U << 2)       /* UDP: schedule every packet, no connection entry (ops) */

/* real.flags */
#define REAL_F_TUN (1U << 0) /* encapsulate (IP-in-IP / IPv6-in-IPv6) */
#define REAL_F_V6 (1U << 1)  /* real's address (TUN outer header) is IPv6 */
#define REAL_F_NAT (1U << 2) /* masquerade: rewrite the destination to addr:port */
#define REAL_F_GUE (1U << 3) /* TUN in GUE: UDP to real.port, then a 4-byte GUE header */
#define REAL_F_FNAT (1U << 4) /* FullNAT: destination := addr:port, source := a local address and port */

/* FullNAT: local addresses per service, the local ports taken (1024 and
 * up), and how many ports a new connection tries before it is dropped. */
#ifndef MAX_LADDRS
#define MAX_LADDRS 16
#endif
#define FNAT_PORT_MIN 1024
#define FNAT_PORTS (65536 - FNAT_PORT_MIN)
#define FNAT_TRIES 16
/* fnat_prepare's state: a new connection (besides CONN_F_EMBRYO, _FIN). */
#define FNAT_NEW (1U << 31)
#ifndef FNAT_TABLE_SIZE
#define FNAT_TABLE_SIZE CONN_TABLE_SIZE
#endif

/* if_mac.flags and if_mac_slot.flags: what an attached interface is. */
/* The fwmark interface (govs-fwm1): the kernel routes packets the
 * operator's netfilter rules marked to its veth peer, whose tc program
 * writes the mark into bytes 2-5 of the destination MAC. Its own MAC is not
 * checked, and what no fwmark service takes is dropped, not passed (the
 * kernel would route it straight back). */
#define IF_F_FWMARK (1U << 0)
/* Where the tc program puts the mark in the destination MAC. */
#define FWMARK_MAC_OFF 2

/* conn.flags */
#define CONN_F_ACTIVE (1U << 0) /* counted in active_conns */
#define CONN_F_FIN (1U << 1)    /* FIN or RST seen */
/* (1U << 2) is CONN_F_SYNCED, set by user space on entries learnt from
 * another director; the program must keep flags it does not know. */
#define CONN_F_EMBRYO (1U << 3) /* in embryos: only a SYN seen */
/* Set by user space on NAT entries it inserts (sync, migration): the next
 * packet records where the client is (nat_learn) and clears it. */
#define CONN_F_NAT_LEARN (1U << 4)

/* Per-service drop reasons (svc_stats.drops[]). */
enum govs_drop {
	DROP_NO_REAL = 0,     /* no real server with weight > 0 */
	DROP_REAL_MISSING = 1, /* table names a real id with no entry */
	DROP_NO_TABLE = 2,    /* service slot has no lookup table */
	DROP_ENCAP = 3,       /* encapsulation failed (headroom) */
	DROP_REDIRECT = 4,    /* egress interface not in the devmap */
	DROP_MAX = 5,
};

/* Global per-CPU counters (index into global_stats). */
enum govs_global {
	G_PASS_NOT_IP = 0,     /* not IPv4/IPv6, or truncated L2 */
	G_PASS_MALFORMED = 1,  /* truncated or invalid L3/L4 */
	G_PASS_NO_SERVICE = 2, /* not for a configured service */
	G_PASS_FRAG_MISS = 3,  /* non-first fragment with no tracked first fragment */
	G_PASS_ICMP = 4,       /* ICMP not matching a tracked flow */
	G_PASS_V6_EXT = 5,     /* IPv6 extension headers other than one fragment header */
	G_ICMP_FWD = 6,        /* ICMP PTB / frag-needed forwarded to a flow's real */
	G_FRAG_FWD = 7,        /* non-first fragments forwarded */
	G_PASS_OTHER_HOST = 8, /* frame not unicast to us: another MAC, broadcast, multicast (see if_macs) */
	G_NAT_REPLY = 9,       /* NAT real servers' replies rewritten back to the VIP */
	G_NAT_UNLEARNT = 10,   /* NAT replies dropped: the client's side not learnt yet (synced flow) */
	G_NAT_ICMP = 11,       /* ICMP errors about NAT flows, translated towards the client */
	G_TUN_TOO_BIG = 12,    /* TUN packets too big once encapsulated: answered with frag-needed / PTB */
	G_FWMARK_MISS = 13,    /* routed to the fwmark interface with no fwmark service of that mark: dropped */
	G_FNAT_NO_PORT = 14,   /* new FullNAT connections dropped: no free local port (or no local address) */
	G_FNAT_REPLY = 15,     /* FullNAT real servers' replies rewritten back to the client */
	G_FNAT_UNKNOWN = 16,   /* to a local address and port no FullNAT connection has: dropped */
	G_FLOWS_UNTRACKED = 17, /* new flows over the new-flow limit forwarded by a hash scheduler, no entry made */
	G_FLOWS_REFUSED = 18,   /* new flows over the new-flow limit that need an entry: dropped */
	G_MAX = 19,
};

#endif

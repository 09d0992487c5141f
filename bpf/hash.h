/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow hashing for the Maglev-style tables: murmur3's 32-bit mixing steps
 * over the flow's words. Only the data plane computes it, so it need not
 * match anything in user space; it must only spread flows evenly. */
#ifndef GOVS_HASH_H
#define GOVS_HASH_H

#include "structs.h"

#define HASH_SEED 0x5eed601dU

static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 hash_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51U;
	k = rotl32(k, 15);
	k *= 0x1b873593U;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64U;
}

static __always_inline __u32 hash_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 hash_addr16(__u32 h, const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;
	h = hash_mix(h, w[0]);
	h = hash_mix(h, w[1]);
	h = hash_mix(h, w[2]);
	h = hash_mix(h, w[3]);
	return h;
}

/* Source address only: sh, and fragment-agnostic affinity. */
static __always_inline __u32 hash_src(const struct flow *f)
{
	return hash_final(hash_addr16(HASH_SEED, f->src));
}

/* Source address and port: sh and mh with sh-port / mh-port. */
static __always_inline __u32 hash_src_port(const struct flow *f)
{
	return hash_final(hash_mix(hash_addr16(HASH_SEED, f->src), f->sport));
}

static __always_inline __u32 hash_dst(const struct flow *f)
{
	return hash_final(hash_addr16(HASH_SEED, f->dst));
}

#endif

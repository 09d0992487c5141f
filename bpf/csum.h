/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksums: of a freshly written outer IPv4 header, and
 * incremental updates (RFC 1624) when NAT rewrites addresses and ports. */
#ifndef GOVS_CSUM_H
#define GOVS_CSUM_H

#include <linux/ip.h>

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* iph->check must be 0 on entry; the header has no options. */
static __always_inline void ipv4_set_csum(struct iphdr *iph)
{
	__u16 *w = (__u16 *)iph;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*iph) / 2; i++)
		sum += w[i];
	iph->check = csum_fold(sum);
}

/* Adds to acc the change of n bytes (n even) from old to new: the sum of
 * ~old and new, 16 bits at a time. */
static __always_inline __u32 csum_delta(__u32 acc, const void *old, const void *new, int n)
{
	const __u16 *o = old, *w = new;
#pragma unroll
	for (int i = 0; i < n / 2; i++)
		acc += (__u16)~o[i] + w[i];
	return acc;
}

/* The checksum check becomes after the changes summed in acc. */
static __always_inline __u16 csum_adjust(__u16 check, __u32 acc)
{
	return csum_fold((__u16)~check + acc);
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksum of a freshly written outer IPv4 header. */
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

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* fwmark virtual servers: the operator's netfilter rules mark packets in
 * prerouting, after XDP has seen them, so the balancer cannot see the mark
 * where it runs. The kernel policy-routes marked packets out of govs-fwm0,
 * one end of a veth pair; this program, on its tc egress, copies the mark
 * into bytes 2-5 of the destination MAC (FWMARK_MAC_OFF in consts.h), and
 * the balancer's XDP program on the other end, govs-fwm1, reads it there to
 * find the fwmark service. It touches nothing else and uses no map. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int govs_fwmark(struct __sk_buff *skb)
{
	__be32 mark = bpf_htonl(skb->mark);
	if (bpf_skb_store_bytes(skb, FWMARK_MAC_OFF, &mark, sizeof(mark), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

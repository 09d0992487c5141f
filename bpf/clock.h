/* The data plane's clock: CLOCK_MONOTONIC nanoseconds (the clock of
 * bpf_ktime_get_ns, which userspace reads through govs_clock), read at
 * most once per jiffy and CPU. bpf_ktime_get_ns is a helper call that
 * costs ~40 ns per packet; bpf_jiffies64 is inlined by the JIT into one
 * load, and a per-CPU array lookup is inlined too. The time returned is up
 * to one jiffy (1/HZ: 4 ms at HZ=250) old, which every user of it (timeouts
 * of a second and more, refresh intervals of a second) tolerates; a
 * timestamp another CPU or userspace wrote may therefore be slightly ahead
 * of it, so ages are taken with age_ns, never by plain subtraction. */
#ifndef GOVS_CLOCK_H
#define GOVS_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct clock_cache {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cache);
} clock_cache SEC(".maps");

static __always_inline __u64 coarse_now(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&clock_cache, &zero);
	if (!c)
		return bpf_ktime_get_ns();
	__u64 j = bpf_jiffies64();
	if (c->jiffies != j || !c->ns) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_ns();
	}
	return c->ns;
}

/* age_ns is how long ago then was: 0 when then is (slightly) ahead. */
static __always_inline __u64 age_ns(__u64 now, __u64 then)
{
	return now > then ? now - then : 0;
}

#endif

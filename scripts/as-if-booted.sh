#!/usr/bin/env bash
# Run a command as if the machine had booted BOOTED_SECONDS (default 60)
# ago: in a time namespace whose monotonic and boot-time clocks are offset
# back by the rest of the uptime, so Go's clocks (time.Now's monotonic
# reading, CLOCK_MONOTONIC, /proc/uptime) start near zero. The BPF clock
# (bpf_ktime_get_ns) is the host's and cannot be offset: the data plane
# reads it through its program, and tests that age entries check they stay
# within a minute (monotonicBefore). Needs root.
# Usage: scripts/as-if-booted.sh COMMAND [ARG...]
set -euo pipefail
booted=${BOOTED_SECONDS:-60}
up=$(cut -d. -f1 /proc/uptime)
if (( up <= booted )); then
	exec "$@" # booted recently already
fi
off=$(( up - booted ))
exec unshare --fork --time --monotonic="-$off" --boottime="-$off" -- bash -c '
	seen=$(cut -d. -f1 /proc/uptime)
	if (( seen > '"$booted"' + 30 )); then echo "as-if-booted: uptime $seen s in the time namespace, want about '"$booted"'" >&2; exit 1; fi
	echo "as-if-booted: running with an uptime of $seen s (the host: '"$up"' s)"
	exec "$@"' as-if-booted "$@"

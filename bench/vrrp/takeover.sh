#!/usr/bin/env bash
# VRRP takeover benchmark: govs vs keepalived, same topology, same run.
#
#   director a 198.18.0.11 ─┐
#   director b 198.18.0.12 ─┼─ br0 (namespace govs-vb-br-*)
#   client     198.18.0.20 ─┘            VIP 198.18.0.100/24
#
# For each implementation and round: a (priority 150, state MASTER) owns the
# VIP, b (priority 100) is BACKUP, the client has the VIP in its ARP cache at
# a's MAC. a is SIGKILLed (its whole process group); we time until b owns the
# VIP ("vip") and until the client's ARP entry shows b's MAC ("arp", which
# proves the gratuitous ARPs). Prints every round, the medians and the ratio.
#
# Usage (root): bench/vrrp/takeover.sh [ROUNDS]   env: VERSION=2|3 ADVERT=1 (seconds; v3 allows 0.1)
set -euo pipefail
ROUNDS=${1:-3}
VERSION=${VERSION:-2}
ADVERT=${ADVERT:-1}
VIP=198.18.0.100
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
command -v keepalived >/dev/null || { echo "needs keepalived (scripts/deps.sh)" >&2; exit 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/govs-vrrp-bench.XXXXXX)
id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
BR=govs-vb-br-$id A=govs-vb-a-$id B=govs-vb-b-$id C=govs-vb-c-$id
# Rounds run in subshells, so started process groups are recorded in a file.
cleanup() {
  if [ -f "$work/pids" ]; then
    while read -r p; do kill -KILL -- "-$p" 2>/dev/null || true; done < "$work/pids"
  fi
  for n in $BR $A $B $C; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/govs" ./cmd/govs)

ip netns add $BR
ip -n $BR link add br0 type bridge
ip -n $BR link set br0 up
port=0
for spec in "$A 198.18.0.11 02:00:00:00:00:0b" "$B 198.18.0.12 02:00:00:00:00:0c" "$C 198.18.0.20 02:00:00:00:00:14"; do
  set -- $spec
  port=$((port+1))
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip link add gvb$id$port type veth peer name eth0 netns "$1"
  ip link set gvb$id$port netns $BR
  ip -n $BR link set gvb$id$port master br0 up
  ip -n "$1" link set eth0 address "$3" up
  ip -n "$1" addr add "$2/24" dev eth0
done

now_ms() { date +%s%3N; }
has_vip() { ip -n "$1" -o addr show dev eth0 | grep -q " $VIP/"; }
client_mac() { ip -n $C neigh show $VIP dev eth0 | awk '{for(i=1;i<NF;i++) if($i=="lladdr") print $(i+1)}'; }

# start NS IMPL PRIO STATE -> pid of the process group leader
start() {
  local ns=$1 impl=$2 prio=$3 state=$4 dir=$work/$1-$impl
  mkdir -p "$dir"
  rm -f "$dir"/*.pid # a SIGKILLed keepalived leaves its pid files behind
  # Both implementations run the same keepalived.conf.
  {
    echo "global_defs {"; echo "  router_id $ns"; [ "$VERSION" = 3 ] && echo "  vrrp_version 3"; echo "}"
    echo "vrrp_instance VI_1 {"; echo "  state $state"; echo "  interface eth0"; echo "  virtual_router_id 51"
    echo "  priority $prio"; echo "  advert_int $ADVERT"
    [ "$VERSION" = 2 ] && printf '  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n'
    echo "  virtual_ipaddress {"; echo "    $VIP/24 dev eth0"; echo "  }"; echo "}"
  } > "$dir/keepalived.conf"
  if [ "$impl" = keepalived ]; then
    setsid ip netns exec "$ns" keepalived --vrrp --dont-fork --log-console -f "$dir/keepalived.conf" \
      -p "$dir/k.pid" -r "$dir/v.pid" -c "$dir/c.pid" >"$dir/log" 2>&1 &
  else
    setsid ip netns exec "$ns" "$work/govs" run -f "$dir/keepalived.conf" --socket - --no-dataplane >"$dir/log" 2>&1 &
  fi
  echo $!
}

wait_until() { # TIMEOUT_MS CMD... -> elapsed ms or fail
  local end=$(( $(now_ms) + $1 )); shift
  until "$@"; do [ "$(now_ms)" -lt $end ] || return 1; sleep 0.005; done
}

round() { # IMPL -> "vip_ms arp_ms"
  local impl=$1
  for n in $A $B; do ip -n $n addr del $VIP/24 dev eth0 2>/dev/null || true; done
  ip -n $C neigh flush dev eth0
  local pa pb
  pa=$(start $A "$impl" 150 MASTER); echo "$pa" >> "$work/pids"
  wait_until 10000 has_vip $A || { echo "$impl: master never took the VIP" >&2; cat "$work/$A-$impl/log" >&2; exit 1; }
  pb=$(start $B "$impl" 100 BACKUP); echo "$pb" >> "$work/pids"
  sleep 1.5
  has_vip $B && { echo "$impl: backup holds the VIP while the master runs" >&2; exit 1; }
  ip netns exec $C ping -c1 -W2 $VIP >/dev/null
  sleep 1.1 # past the client's neighbour lock time, so a GARP may override it
  local t0; t0=$(now_ms)
  kill -KILL -- "-$pa"; wait "$pa" 2>/dev/null || true
  wait_until 15000 has_vip $B || { echo "$impl: backup never took over" >&2; exit 1; }
  local t1; t1=$(now_ms)
  wait_until 5000 sh -c "[ \"\$(ip -n $C neigh show $VIP dev eth0 | grep -o '02:00:00:00:00:0c')\" ]" || { echo "$impl: client ARP never moved" >&2; exit 1; }
  local t2; t2=$(now_ms)
  kill -KILL -- "-$pb" 2>/dev/null; wait "$pb" 2>/dev/null || true
  echo "$((t1-t0)) $((t2-t0))"
}

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "VRRP takeover after SIGKILL of the master: VRRPv$VERSION advert_int $ADVERT s, backup priority 100, $ROUNDS rounds"
declare -A vip arp
for impl in keepalived govs; do
  vip[$impl]="" arp[$impl]=""
  for r in $(seq "$ROUNDS"); do
    read -r v a < <(round $impl)
    printf '  %-10s round %d: VIP on backup after %5d ms, client ARP moved after %5d ms\n' "$impl" "$r" "$v" "$a"
    vip[$impl]+="$v"$'\n' arp[$impl]+="$a"$'\n'
  done
done
kv=$(printf '%s' "${vip[keepalived]}" | median) ka=$(printf '%s' "${arp[keepalived]}" | median)
gv=$(printf '%s' "${vip[govs]}" | median) ga=$(printf '%s' "${arp[govs]}" | median)
echo
printf '%-12s %14s %16s\n' impl "median VIP ms" "median ARP ms"
printf '%-12s %14d %16d\n' keepalived "$kv" "$ka" govs "$gv" "$ga"
awk -v g="$gv" -v k="$kv" 'BEGIN{ if (k>0) printf "govs/keepalived takeover ratio: %.2f\n", g/k }'

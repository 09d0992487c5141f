package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Resilient nexthop groups: BIRD 2 installs multipath routes, not nexthop
// objects, so in the resilient mode it writes them to ResilientTable and
// Nexthops (govs lab nexthops, run on the router) mirrors each host route
// there into the main table through a resilient group. Removing a next hop
// from such a group moves only its own buckets (its flows); a next hop
// that joins takes buckets only once they have been idle for
// resilientIdle, so busy flows stay where they are.
const (
	resilientBuckets = 128
	resilientIdle    = 5 // seconds
)

// NexthopsOptions configure Nexthops.
type NexthopsOptions struct {
	Table int    // where BIRD writes its routes
	Dev   string // the interface the next hops are on
	Log   *slog.Logger
	// Resync is how often the table is read again besides on route
	// events (default 1 s), in case an event was missed.
	Resync time.Duration
}

// nexthopGroup is one host route's group as applied.
type nexthopGroup struct {
	id      int
	members []int // nexthop ids, sorted
}

type nexthopSyncer struct {
	o       NexthopsOptions
	ids     map[netip.Addr]int // next hop address -> nexthop id
	nextID  int
	groups  map[netip.Prefix]*nexthopGroup
	nextGrp int
}

// Nexthops mirrors o.Table's multipath host routes into resilient nexthop
// groups in the main table until ctx ends, then removes what it made.
func Nexthops(ctx context.Context, o NexthopsOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Resync <= 0 {
		o.Resync = time.Second
	}
	s := &nexthopSyncer{o: o, ids: map[netip.Addr]int{}, nextID: 1000, groups: map[netip.Prefix]*nexthopGroup{}, nextGrp: 1}
	updates := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{ListExisting: false}); err != nil {
		return fmt.Errorf("nexthops: subscribe to routes: %w", err)
	}
	tick := time.NewTicker(o.Resync)
	defer tick.Stop()
	for {
		if err := s.sync(); err != nil {
			o.Log.Warn("nexthops: sync", "err", err)
		}
		select {
		case <-ctx.Done():
			s.removeAll()
			return nil
		case <-updates:
			// Drain a burst before reading the table again.
			for len(updates) > 0 {
				<-updates
			}
		case <-tick.C:
		}
	}
}

// wanted reads the table: each host route and its next hop addresses.
func (s *nexthopSyncer) wanted() (map[netip.Prefix][]netip.Addr, error) {
	out := map[netip.Prefix][]netip.Addr{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: s.o.Table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list table %d: %w", s.o.Table, err)
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			ones, bits := r.Dst.Mask.Size()
			a, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok || ones != bits {
				continue
			}
			p := netip.PrefixFrom(a.Unmap(), ones)
			var gws []netip.Addr
			add := func(ip net.IP) {
				if g, ok := netip.AddrFromSlice(ip); ok {
					gws = append(gws, g.Unmap())
				}
			}
			if r.Gw != nil {
				add(r.Gw)
			}
			for _, nh := range r.MultiPath {
				add(nh.Gw)
			}
			slices.SortFunc(gws, func(x, y netip.Addr) int { return x.Compare(y) })
			if len(gws) > 0 {
				out[p] = slices.Compact(gws)
			}
		}
	}
	return out, nil
}

func (s *nexthopSyncer) sync() error {
	want, err := s.wanted()
	if err != nil {
		return err
	}
	for p, gws := range want {
		var members []int
		for _, g := range gws {
			id, ok := s.ids[g]
			if !ok {
				id = s.nextID
				s.nextID++
				if err := ipCmd("nexthop", "replace", "id", strconv.Itoa(id), "via", g.String(), "dev", s.o.Dev); err != nil {
					return err
				}
				s.ids[g] = id
			}
			members = append(members, id)
		}
		slices.Sort(members)
		grp := s.groups[p]
		if grp != nil && slices.Equal(grp.members, members) {
			continue
		}
		if grp == nil {
			grp = &nexthopGroup{id: s.nextGrp}
			s.nextGrp++
		}
		ids := make([]string, len(members))
		for i, m := range members {
			ids[i] = strconv.Itoa(m)
		}
		if err := ipCmd("nexthop", "replace", "id", strconv.Itoa(grp.id), "group", strings.Join(ids, "/"), "type", "resilient",
			"buckets", strconv.Itoa(resilientBuckets), "idle_timer", strconv.Itoa(resilientIdle)); err != nil {
			return err
		}
		if s.groups[p] == nil {
			if err := ipCmd("route", "replace", p.String(), "nhid", strconv.Itoa(grp.id)); err != nil {
				return err
			}
		}
		grp.members = members
		s.groups[p] = grp
		s.o.Log.Info("nexthops: group", "prefix", p, "group", grp.id, "next_hops", gws)
	}
	for p, grp := range s.groups {
		if _, ok := want[p]; ok {
			continue
		}
		_ = ipCmd("route", "del", p.String(), "nhid", strconv.Itoa(grp.id))
		if err := ipCmd("nexthop", "del", "id", strconv.Itoa(grp.id)); err != nil {
			return err
		}
		delete(s.groups, p)
		s.o.Log.Info("nexthops: withdrawn", "prefix", p)
	}
	return nil
}

func (s *nexthopSyncer) removeAll() {
	for p, grp := range s.groups {
		_ = ipCmd("route", "del", p.String(), "nhid", strconv.Itoa(grp.id))
		_ = ipCmd("nexthop", "del", "id", strconv.Itoa(grp.id))
	}
	for _, id := range s.ids {
		_ = ipCmd("nexthop", "del", "id", strconv.Itoa(id))
	}
}

// ipCmd runs ip(8) in the current namespace: netlink's library has no
// nexthop objects.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

package desired

import (
	"fmt"
	"net/netip"
	"slices"
)

// WeightKey names one real server of one virtual server (by its pool).
type WeightKey struct {
	Pool string
	Real RealKey
}

// Overrides are weights an operator set at run time (`govs weight`,
// `govs drain`), like `ipvsadm -e -w`. An override takes the place of the
// configured weight while the real server's checks pass; a failed server
// stays out (or at weight 0) whatever its override. Weight 0 drains: no
// new connections, established ones go on.
type Overrides map[WeightKey]uint32

// Apply returns pools with the overrides in place of the weights of real
// servers that are up (weight > 0). Sorry servers are left alone.
func (p *Plan) Apply(pools Pools, o Overrides) Pools {
	if len(o) == 0 {
		return pools
	}
	out := Pools{}
	for k, v := range pools {
		out[k] = v
	}
	for _, s := range p.Services {
		if !touches(o, s.Pool) {
			continue // its pool stands as it is (or is the configured one)
		}
		dests := slices.Clone(s.pool(pools))
		for i, d := range dests {
			ap, err := netip.ParseAddrPort(d.Name)
			if err != nil || d.Sorry || d.Weight <= 0 {
				continue
			}
			if w, ok := o[WeightKey{s.Pool, RealKey{ap.Addr(), ap.Port()}}]; ok {
				dests[i].Weight = int(w)
			}
		}
		out[s.Pool] = dests
	}
	return out
}

func touches(o Overrides, pool string) bool {
	for k := range o {
		if k.Pool == pool {
			return true
		}
	}
	return false
}

// Matching returns the keys that vs (a pool name, or "" for every virtual
// server) and real (a real server's address, with a port or 0 for any
// port) name in the plan; an error says why none does.
func (p *Plan) Matching(vs string, real netip.Addr, port uint16) ([]WeightKey, error) {
	var out []WeightKey
	seen := map[WeightKey]bool{}
	for _, s := range p.Services {
		if vs != "" && s.Pool != vs {
			continue
		}
		for _, r := range s.Reals {
			if r.Key.Addr != real || (port != 0 && r.Key.Port != port) {
				continue
			}
			k := WeightKey{s.Pool, r.Key}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		if vs != "" {
			return nil, fmt.Errorf("virtual server %s has no real server %s", vs, netip.AddrPortFrom(real, port))
		}
		return nil, fmt.Errorf("no virtual server has real server %s", real)
	}
	return out, nil
}

// Keep returns the overrides that still name a real server of p (after a
// reload).
func (p *Plan) Keep(o Overrides) Overrides {
	out := Overrides{}
	for k, w := range o {
		for _, s := range p.Services {
			if s.Pool == k.Pool && slices.ContainsFunc(s.Reals, func(r Real) bool { return r.Key == k.Real }) {
				out[k] = w
				break
			}
		}
	}
	return out
}

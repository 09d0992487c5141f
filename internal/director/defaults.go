package director

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/neigh"
)

// kernelResolver finds real servers' MACs in the kernel's neighbour table.
type kernelResolver struct{ log *slog.Logger }

func defaultResolver(log *slog.Logger) Resolver { return kernelResolver{log: log} }

// Watch reports resolved addresses; an address that loses its entry is
// reported with a nil MAC so the director stops forwarding to a stale one.
func (k kernelResolver) Watch(ctx context.Context, addrs []netip.Addr, update func(netip.Addr, *desired.Neighbour)) {
	kern, err := neigh.NewNetlinkKernel(nil)
	if err != nil {
		k.log.Error("neighbour table", "err", err)
		return
	}
	defer kern.Close()
	r, err := neigh.NewResolver(neigh.Options{Kernel: kern})
	if err != nil {
		k.log.Error("neighbour resolver", "err", err)
		return
	}
	for u := range r.Watch(ctx, addrs) {
		if u.Resolved {
			update(u.IP, &desired.Neighbour{MAC: u.MAC, Ifindex: u.Ifindex, Src: u.Src})
			continue
		}
		k.log.Warn("real server unresolved", "addr", u.IP, "err", u.Err)
		update(u.IP, nil)
	}
}

package director

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// Links reports whether the data plane's interfaces can carry traffic and
// says when one changes, so that a director withdraws its BGP
// announcements when it could not forward what they draw (the kernel's
// links through netlink; a fake in tests).
type Links interface {
	Up(name string) (bool, error)
	// Watch calls changed after every link change until ctx ends.
	Watch(ctx context.Context, changed func()) error
}

// kernelLinks reads and watches this network namespace's links.
type kernelLinks struct{}

// Up is true for a link that is administratively up with carrier: a veth
// whose peer is down reports lower-layer-down, a virtual link with no
// carrier notion reports unknown.
func (kernelLinks) Up(name string) (bool, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", name, err)
	}
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown), nil
}

func (kernelLinks) Watch(ctx context.Context, changed func()) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{}); err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-updates:
			if !ok {
				return fmt.Errorf("watch links: the subscription ended")
			}
			changed()
		}
	}
}

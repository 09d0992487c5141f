package check

import (
	"context"
	"fmt"
	"syscall"
)

// socketOptions are the options a checker's socket gets before it binds
// and connects.
type socketOptions struct {
	reuseAddr bool   // a fixed bind_port is reused every delay_loop
	device    string // bind_if
	mark      uint32 // fwmark
}

func (o socketOptions) none() bool { return !o.reuseAddr && o.device == "" && o.mark == 0 }

// control sets the options on a new socket.
func (o socketOptions) control(_ context.Context, _, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if o.reuseAddr {
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
				serr = fmt.Errorf("set SO_REUSEADDR: %w", err)
				return
			}
		}
		if o.device != "" {
			if err := syscall.BindToDevice(int(fd), o.device); err != nil {
				serr = fmt.Errorf("bind to interface %s: %w", o.device, err)
				return
			}
		}
		if o.mark != 0 {
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(o.mark)); err != nil {
				serr = fmt.Errorf("set fwmark %d: %w", o.mark, err)
			}
		}
	}); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return serr
}

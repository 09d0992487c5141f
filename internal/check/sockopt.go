package check

import (
	"context"
	"fmt"
	"syscall"
)

// reuseAddr sets SO_REUSEADDR before bind.
func reuseAddr(_ context.Context, _, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEADDR: %w", serr)
	}
	return nil
}

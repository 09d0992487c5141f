package director

import (
	"context"
	"errors"
	"log/slog"

	"github.com/govs/govs/internal/config"
)

// defaultResolver is replaced by the kernel neighbour-table resolver.
func defaultResolver(log *slog.Logger) Resolver { return nil }

// defaultVRRP is replaced by the VRRP runner.
func defaultVRRP(ctx context.Context, cfg *config.Config, log *slog.Logger) (VRRP, error) {
	return nil, errors.New("vrrp not available")
}

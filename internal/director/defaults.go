package director

import "log/slog"

// defaultResolver is replaced by the kernel neighbour-table resolver.
func defaultResolver(log *slog.Logger) Resolver { return nil }

// Package control is the govs daemon's control socket: a unix stream socket
// that speaks a small versioned JSON protocol, one request and one response
// per line, so `govs list` and `govs reload` (or socat and jq) can ask the
// running director for its state and have it reload its configuration.
//
// The server only holds callbacks (status, connections, reload); it knows
// nothing of how the daemon keeps its state.
package control

import (
	"errors"
	"fmt"
	"time"

	"github.com/govs/govs/internal/status"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/govs/govs.sock"

// ProtocolVersion is the version of the request and response format this
// package speaks. A request without a version is taken as version 1.
const ProtocolVersion = 1

// MaxRequestSize bounds one request line (its JSON and the newline). Real
// requests are a few dozen bytes; the bound stops a client from making the
// daemon buffer without end.
const MaxRequestSize = 64 << 10

// Operations a request can ask for.
const (
	OpStatus      = "status"
	OpConnections = "connections"
	OpReload      = "reload"
	// OpWeight sets (or, without Weight, resets) a real server's weight at
	// run time (`govs weight`, `govs drain`).
	OpWeight = "weight"
	// OpBGPDrain withdraws (Drain true) or announces again (false) every
	// BGP announcement of the director, which keeps forwarding what still
	// reaches it (`govs bgp drain`, `govs bgp undrain`).
	OpBGPDrain = "bgp-drain"
)

// Request is one line a client sends.
type Request struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	// Weight request: the virtual server ("" for every one), the real
	// server (an address, or address:port), and the weight (absent: the
	// configured one again).
	VirtualServer string  `json:"virtual_server,omitempty"`
	Real          string  `json:"real,omitempty"`
	Weight        *uint32 `json:"weight,omitempty"`
	// Drain is OpBGPDrain's: drained or not. StopAfter, with Drain, is
	// the drain period: the daemon stops once it has passed (0: it keeps
	// running drained).
	Drain     bool          `json:"drain,omitempty"`
	StopAfter time.Duration `json:"stop_after_ns,omitempty"`
}

// Response is the one line the server sends back for each request. OK is
// false exactly when Error is set.
type Response struct {
	Version int    `json:"version"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	// Status answers OpStatus. It never carries connections.
	Status *status.Snapshot `json:"status,omitempty"`
	// Connections answers OpConnections.
	Connections []status.Connection `json:"connections,omitempty"`
	// Changed answers OpWeight: how many real servers it changed.
	Changed int `json:"changed,omitempty"`
}

// RemoteError is an error the daemon reported, such as a configuration that
// failed to load on reload.
type RemoteError struct {
	Op      string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// ErrDaemonRunning is returned by Listen when another daemon already serves
// the socket.
var ErrDaemonRunning = errors.New("another govs daemon is running")

func errorResponse(format string, args ...any) Response {
	return Response{Version: ProtocolVersion, Error: fmt.Sprintf(format, args...)}
}

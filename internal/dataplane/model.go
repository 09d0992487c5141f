package dataplane

import (
	"net/netip"

	"github.com/govs/govs/internal/dpstate"
)

// The desired state is defined in the pure package dpstate, so the plan
// builds it without importing the kernel glue; these names keep the data
// plane's API whole.
type (
	// State is the desired data-plane state.
	State = dpstate.State
	// Service is one virtual service.
	Service = dpstate.Service
	// Real is one real server of a service.
	Real = dpstate.Real
	// Protocol is a virtual service's transport protocol.
	Protocol = dpstate.Protocol
	// Method is how a packet reaches a real server.
	Method = dpstate.Method
	// Timeouts are the connection entries' idle timeouts.
	Timeouts = dpstate.Timeouts
)

// Protocols and forwarding methods.
const (
	TCP  = dpstate.TCP
	UDP  = dpstate.UDP
	DR   = dpstate.DR
	TUN  = dpstate.TUN
	NAT  = dpstate.NAT
	FNAT = dpstate.FNAT
)

type serviceKey = dpstate.ServiceKey

type realKey struct {
	svc  serviceKey
	addr netip.Addr
}

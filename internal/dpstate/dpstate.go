// Package dpstate is the data plane's desired state as plain values: the
// services, their real servers and where frames for them go. It is pure, so
// the plan (internal/desired) builds it and the data plane (internal/dataplane)
// and its fake validate it with the same rules.
package dpstate

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/sched"
)

// The data plane's compiled sizes (bpf/consts.h; the data plane's tests
// check they match its object). The plan refuses a configuration beyond
// them, so no apply fails on them at run time.
const (
	// MaxServices is how many virtual services (a group's addresses
	// count one each) the data plane holds.
	MaxServices = 256
	// MaxRealIDs is how many real servers (per service, sorry servers
	// included) it holds over all services; id 0 is reserved.
	MaxRealIDs = 4095
	// MaxLeastConnReals is the most real servers an lc or wlc service has.
	MaxLeastConnReals = 64
	// MaxTable is the longest lookup table. Maglev tables have a fixed
	// size below it and weighted sequences are scaled to sched.MaxSequence.
	MaxTable = 131071
	// ConnTableSize is the connection table's capacity.
	ConnTableSize = 262144
	// EmbryoTableSize is the embryonic-flow table's capacity (TCP flows
	// of which only the SYN was seen).
	EmbryoTableSize = 65536
)

// TableSizes are the capacities of the data plane's flow tables.
type TableSizes struct {
	Conns, Embryos int
}

// TableEntryBytes is about what one flow-table entry costs in kernel
// memory (a 40-byte key, a 24- to 48-byte value and the hash table's
// overhead), to tell whether sizes fit the machine.
const TableEntryBytes = 128

// Bytes estimates the kernel memory the tables take: the connection
// table, the NAT reply table of the same size, and the embryonic table.
func (t TableSizes) Bytes() uint64 {
	return uint64(2*t.Conns+t.Embryos) * TableEntryBytes
}

// Fwmark is a firewall mark and family that fwmark services take: the
// kernel must route packets so marked to the balancer (internal/fwmark).
type Fwmark struct {
	Mark uint32
	IPv6 bool
}

// Fwmarks lists the marks of s's fwmark services, in order.
func (s State) Fwmarks() []Fwmark {
	var out []Fwmark
	for _, svc := range s.Services {
		if svc.Fwmark != 0 {
			out = append(out, Fwmark{Mark: svc.Fwmark, IPv6: svc.Addr.Is6()})
		}
	}
	return out
}

// Protocol is a virtual service's transport protocol.
type Protocol uint8

// Protocols the data plane balances (IANA numbers).
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Method is how a packet reaches a real server.
type Method uint8

const (
	// DR (direct routing) rewrites only the Ethernet addresses; the real
	// server must hold the VIP and be on the same L2 segment.
	DR Method = iota
	// TUN encapsulates the packet (IP-in-IP, IPv6-in-IPv6, or mixed) towards
	// the real server's address; MAC is then the next hop's.
	TUN
	// NAT (masquerade) rewrites the destination to the real server's
	// address and port; the real server routes its replies through the
	// director, which rewrites their source back to the VIP and port.
	NAT
	// FNAT (FullNAT) rewrites the destination as NAT does and the source
	// to one of the service's local addresses with a port of its own; the
	// real server answers that address, with no route through the director.
	FNAT
)

// MaxLocalAddrs is how many local addresses a FullNAT service has at most
// (MAX_LADDRS in bpf/consts.h).
const MaxLocalAddrs = 16

func (m Method) String() string {
	switch m {
	case DR:
		return "DR"
	case TUN:
		return "TUN"
	case NAT:
		return "NAT"
	case FNAT:
		return "FNAT"
	}
	return fmt.Sprintf("method-%d", uint8(m))
}

// State is the desired data-plane state: everything the XDP program needs,
// and nothing it does not.
type State struct {
	Services []Service
	// InterfaceMACs gives each egress interface's own MAC address (the
	// source MAC of forwarded frames). Dataplane.Apply fills in interfaces
	// missing here from the kernel.
	InterfaceMACs map[int]net.HardwareAddr
	// TunnelSource4 and TunnelSource6 are the outer source addresses of TUN
	// packets (an address of the director).
	TunnelSource4, TunnelSource6 netip.Addr
	// NewFlowLimit caps the connection (and embryonic) entries the data
	// plane makes per second, over all CPUs (govs_new_flow_limit; 0: no
	// cap). Past it, new flows of mh, sh and dh services towards DR and
	// TUN servers are forwarded without an entry, the others dropped.
	NewFlowLimit uint32
	// Timeouts are the idle timeouts of connection entries (lvs_timeouts).
	Timeouts Timeouts
}

// Timeouts are how long a connection entry lives without a packet, as
// IPVS's: an established TCP connection, one closing (a FIN or RST seen) and
// a UDP flow. A zero one is the data plane's default (900 s, 120 s, 300 s,
// IPVS's defaults).
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// Service is one virtual service.
type Service struct {
	Addr netip.Addr
	// Port 0 makes an "any port" service (keepalived's `virtual_server VIP
	// 0`); a service with the packet's exact port takes precedence.
	Port     uint16
	Protocol Protocol
	// Fwmark, when not zero, makes a firewall-mark service (keepalived's
	// `virtual_server fwmark N`): it takes the packets of its address
	// family that the operator's netfilter rules marked N, of any address,
	// port and protocol. Addr is then the family's unspecified address,
	// Port and Protocol are 0.
	Fwmark    uint32
	Scheduler sched.Kind
	// PersistenceTimeout > 0 keeps a client on the same real server for
	// new connections until it has been idle that long.
	PersistenceTimeout time.Duration
	// PersistenceBits is the prefix length that groups clients for
	// persistence (keepalived's persistence_granularity); 0 means the whole
	// address (32 or 128).
	PersistenceBits int
	// TableSize is the Maglev table size for mh, sh and dh: a prime; 0
	// means maglev.DefaultSize.
	TableSize uint64
	// HashPort makes sh and mh hash the client's port with its address
	// (keepalived's sh-port / mh-port); without it they hash the address
	// only, as IPVS does.
	HashPort bool
	// OnePacket schedules every UDP datagram on its own and keeps no
	// connection entry (keepalived's ops).
	OnePacket bool
	// LocalAddrs are the source addresses of a FullNAT service's packets
	// towards its real servers (DPVS's local_address_group): the real
	// servers see and answer them.
	LocalAddrs []netip.Addr
	Reals      []Real
}

// Real is one real server of a service.
type Real struct {
	Addr netip.Addr
	// Port is the real server's port for NAT (0: the service's port).
	Port   uint16
	Weight uint32
	Method Method
	// GUEPort, for TUN, encapsulates in GUE (RFC draft, as IPVS's "tunnel
	// type gue") to this UDP port instead of IP-in-IP.
	GUEPort uint16
	// MAC is the real server's MAC (DR) or the next hop's towards it (TUN),
	// as resolved from the neighbour table by the caller. Nil means "not
	// resolved (yet)": the real gets no new flows, and connections it
	// already has keep the MAC applied before.
	MAC net.HardwareAddr
	// Ifindex is the egress interface. XDP_TX is used when it is the
	// interface the packet came in on (or 0, which then needs
	// State.InterfaceMACs[0]), a devmap redirect otherwise.
	Ifindex int
}

// Key identifies the service.
func (s Service) Key() ServiceKey {
	return ServiceKey{Addr: s.Addr, Port: s.Port, Proto: s.Protocol, Fwmark: s.Fwmark}
}

func (s Service) String() string {
	if s.Fwmark != 0 {
		if s.Addr.Is6() {
			return fmt.Sprintf("FWM %d IPv6", s.Fwmark)
		}
		return fmt.Sprintf("FWM %d", s.Fwmark)
	}
	if s.Addr.Is6() {
		return fmt.Sprintf("%s [%s]:%d", s.Protocol, s.Addr, s.Port)
	}
	return fmt.Sprintf("%s %s:%d", s.Protocol, s.Addr, s.Port)
}

// ServiceKey identifies a virtual service: no two services of a state share one.
type ServiceKey struct {
	Addr   netip.Addr
	Port   uint16
	Proto  Protocol
	Fwmark uint32
}

// Validate reports the first problem that would stop the state from being
// applied.
func (s State) Validate() error {
	if t := s.Timeouts; t.TCP < 0 || t.TCPFin < 0 || t.UDP < 0 {
		return fmt.Errorf("negative connection timeout: %+v", t)
	}
	seen := map[ServiceKey]bool{}
	for _, svc := range s.Services {
		if !svc.Addr.IsValid() {
			return fmt.Errorf("service %s: no address", svc)
		}
		if svc.Addr.Is4In6() {
			return fmt.Errorf("service %s: use a plain IPv4 address, not IPv4-mapped IPv6", svc)
		}
		switch {
		case svc.Fwmark != 0:
			if !svc.Addr.IsUnspecified() || svc.Port != 0 || svc.Protocol != 0 {
				return fmt.Errorf("service %s: a fwmark service has the unspecified address, port 0 and protocol 0", svc)
			}
		case svc.Addr.IsUnspecified():
			return fmt.Errorf("service %s: unspecified address", svc)
		case svc.Protocol != TCP && svc.Protocol != UDP:
			return fmt.Errorf("service %s: protocol must be TCP or UDP", svc)
		}
		if _, err := sched.ParseKind(string(svc.Scheduler)); err != nil {
			return fmt.Errorf("service %s: %w", svc, err)
		}
		if seen[svc.Key()] {
			return fmt.Errorf("service %s: defined twice", svc)
		}
		seen[svc.Key()] = true
		maxBits := svc.Addr.BitLen()
		if svc.PersistenceBits < 0 || svc.PersistenceBits > maxBits {
			return fmt.Errorf("service %s: persistence prefix /%d outside [0, %d]", svc, svc.PersistenceBits, maxBits)
		}
		if svc.PersistenceTimeout < 0 {
			return fmt.Errorf("service %s: negative persistence timeout", svc)
		}
		if len(svc.LocalAddrs) > MaxLocalAddrs {
			return fmt.Errorf("service %s: %d local addresses, at most %d", svc, len(svc.LocalAddrs), MaxLocalAddrs)
		}
		for _, a := range svc.LocalAddrs {
			if !a.IsValid() || a.Is4() != svc.Addr.Is4() || a.Is4In6() {
				return fmt.Errorf("service %s: local address %s is not of the VIP's family", svc, a)
			}
		}
		reals := map[netip.Addr]bool{}
		for _, r := range svc.Reals {
			if !r.Addr.IsValid() {
				return fmt.Errorf("service %s: real server without address", svc)
			}
			if reals[r.Addr] {
				return fmt.Errorf("service %s: real server %s listed twice", svc, r.Addr)
			}
			reals[r.Addr] = true
			if len(r.MAC) != 6 && len(r.MAC) != 0 {
				return fmt.Errorf("service %s: real server %s: MAC %q is not a 6-byte Ethernet address", svc, r.Addr, r.MAC)
			}
			if r.Ifindex < 0 {
				return fmt.Errorf("service %s: real server %s: negative ifindex", svc, r.Addr)
			}
			switch r.Method {
			case DR, NAT, FNAT:
				if r.Addr.Is4() != svc.Addr.Is4() {
					return fmt.Errorf("service %s: real server %s: %s needs the same address family as the VIP", svc, r.Addr, r.Method)
				}
				if r.Method == FNAT && len(svc.LocalAddrs) == 0 {
					return fmt.Errorf("service %s: real server %s: FNAT needs local addresses", svc, r.Addr)
				}
				if r.Method == FNAT && svc.OnePacket {
					return fmt.Errorf("service %s: real server %s: FNAT with one-packet scheduling", svc, r.Addr)
				}
			case TUN:
				src := s.TunnelSource4
				if r.Addr.Is6() {
					src = s.TunnelSource6
				}
				if !src.IsValid() {
					return fmt.Errorf("service %s: real server %s: TUN needs a tunnel source address of its family", svc, r.Addr)
				}
			default:
				return fmt.Errorf("service %s: real server %s: unknown forwarding method %d", svc, r.Addr, r.Method)
			}
		}
	}
	return nil
}

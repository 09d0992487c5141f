// Package bgp is govs's BGP speaker: GoBGP's server, run as a library in
// the daemon, peering with the routers of the govs_bgp block and
// announcing the VIPs the director says are ready, as host routes with the
// session's own address as next hop. The routers spread flows over every
// director that announces a VIP (ECMP).
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/govs/govs/internal/desired"
)

// Peer is a neighbor's session as the speaker sees it.
type Peer struct {
	Addr        netip.Addr
	RemoteAS    uint32
	State       string // idle, connect, active, opensent, openconfirm, established
	Established bool
}

// Speaker is a running BGP speaker.
type Speaker struct {
	log *slog.Logger
	cfg desired.BGP
	srv *server.BgpServer

	mu        sync.Mutex
	announced map[netip.Prefix]bool
}

// Start starts a speaker for cfg: the BGP instance and every neighbor.
// restarting says govs restarted over a pinned data plane that kept
// forwarding: with graceful restart on, the OPEN says so (the Restart
// State bit), and the routers keep the routes they had until this
// speaker's End-of-RIB.
func Start(ctx context.Context, cfg desired.BGP, restarting bool, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.Default()
	}
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn) // GoBGP's own logging: warnings and errors
	srv := server.NewBgpServer(server.LoggerOption(log.With("component", "gobgp"), lvl))
	go srv.Serve()
	sp := &Speaker{log: log, cfg: cfg, srv: srv, announced: map[netip.Prefix]bool{}}
	listen := int32(cfg.ListenPort)
	if cfg.ListenPort <= 0 {
		listen = -1
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.LocalAS, RouterId: cfg.RouterID.String(), ListenPort: listen,
	}}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start BGP (AS %d, router id %s): %w", cfg.LocalAS, cfg.RouterID, err)
	}
	for _, n := range cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerOf(n, cfg.GracefulRestart, restarting)}); err != nil {
			srv.Stop()
			return nil, fmt.Errorf("start BGP: neighbor %s: %w", n.Addr, err)
		}
	}
	return sp, nil
}

func peerOf(n desired.BGPNeighbor, restartTime time.Duration, restarting bool) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.RemoteAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: uint64(n.HoldTime.Seconds()), KeepaliveInterval: uint64(n.Keepalive.Seconds()), ConnectRetry: 5,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive},
	}
	if restartTime > 0 {
		// The forwarding state is preserved: graceful restart is only
		// allowed with a pinned data plane (the director checks).
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(restartTime.Seconds()), LocalRestarting: restarting}
		fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
		if n.Addr.Is6() {
			fam.Afi = api.Family_AFI_IP6
		}
		p.AfiSafis = []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: fam, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}}
	}
	if n.BFD != nil {
		// GoBGP opens its BFD socket (UDP 3784) only for a neighbor
		// with BFD enabled: none unless configured.
		us := uint32(n.BFD.Interval.Microseconds())
		p.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us,
			DetectionMultiplier: uint32(n.BFD.Multiplier)}
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	return p
}

// Config is what the speaker runs.
func (s *Speaker) Config() desired.BGP { return s.cfg }

// Announce makes the announced set exactly vips' host routes: new ones
// are added, the others withdrawn.
func (s *Speaker) Announce(vips []netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[netip.Prefix]bool{}
	for _, v := range vips {
		want[desired.BGPPrefix(v)] = true
	}
	var errs []error
	for p := range want {
		if s.announced[p] {
			continue
		}
		path, err := s.path(p)
		if err == nil {
			_, err = s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", p, err))
			continue
		}
		s.announced[p] = true
		s.log.Info("BGP: announcing", "prefix", p)
	}
	for p := range s.announced {
		if want[p] {
			continue
		}
		path, err := s.path(p)
		if err == nil {
			err = s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", p, err))
			continue
		}
		delete(s.announced, p)
		s.log.Info("BGP: withdrawn", "prefix", p)
	}
	return errors.Join(errs...)
}

// Announced lists the prefixes announced now.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Prefix, 0, len(s.announced))
	for p := range s.announced {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// path is the announcement of prefix p: origin IGP, the unspecified next
// hop (GoBGP sends the session's local address), and the block's
// communities, local preference and MED.
func (s *Speaker) path(p netip.Prefix) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}
	family := bgp.RF_IPv4_UC
	if p.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if len(s.cfg.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(s.cfg.Communities))
	}
	if s.cfg.LocalPref != nil {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(*s.cfg.LocalPref))
	}
	if s.cfg.MED != nil {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(*s.cfg.MED))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// Peers reports every neighbor's session.
func (s *Speaker) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		a, _ := netip.ParseAddr(p.Conf.NeighborAddress)
		st := p.State.SessionState
		out = append(out, Peer{Addr: a, RemoteAS: p.Conf.PeerAsn, State: stateName(st),
			Established: st == api.PeerState_SESSION_STATE_ESTABLISHED})
	})
	slices.SortFunc(out, func(a, b Peer) int { return a.Addr.Compare(b.Addr) })
	return out, err
}

func stateName(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

// Stop withdraws everything (the sessions close with a notification) and
// stops the speaker.
func (s *Speaker) Stop() {
	s.srv.Stop() // StopBgp, then the rest; calling StopBgp first made it log a second stop as an error
}

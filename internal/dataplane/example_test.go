package dataplane_test

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// The director's life cycle: load, attach to the LAN interface, apply the
// virtual services (again on every change), read counters, close.
func Example() {
	lan, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	dp, err := dataplane.Open(dataplane.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer dp.Close()
	if err := dp.Attach(lan.Index, dataplane.Auto); err != nil {
		log.Fatal(err)
	}
	web := func(addr, mac string) dataplane.Real {
		hw, _ := net.ParseMAC(mac) // from the neighbour table in the daemon
		return dataplane.Real{Addr: netip.MustParseAddr(addr), Weight: 1, MAC: hw, Ifindex: lan.Index}
	}
	err = dp.Apply(dataplane.State{Services: []dataplane.Service{{
		Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Protocol: dataplane.TCP,
		Scheduler:          sched.RoundRobin,
		PersistenceTimeout: 5 * time.Minute,
		Reals:              []dataplane.Real{web("198.18.0.11", "02:00:00:00:00:11"), web("198.18.0.12", "02:00:00:00:00:12")},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	st, err := dp.Stats()
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range st.Services {
		fmt.Println(s.Service, s.Packets, s.NewConns)
	}
}

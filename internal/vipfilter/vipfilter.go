// Package vipfilter keeps the nftables rules that make a VRRP MASTER drop
// packets addressed to its VIPs, as keepalived does for instances without
// accept mode (no_accept, and vrrp_strict's default): RFC 5798's
// Accept_Mode off. Traffic the XDP data plane balances never reaches
// netfilter, so only the director's own services on a VIP are affected.
// Neighbour solicitations and advertisements for an IPv6 VIP still pass,
// or the VIP could not be resolved.
package vipfilter

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the nftables table (family inet) the filter owns.
const Table = "govs_vrrp"

// Filter is the table with its two address sets.
type Filter struct {
	conn       *nftables.Conn
	table      *nftables.Table
	set4, set6 *nftables.Set
}

// Open creates the table afresh (replacing one a killed govs left), with
// empty sets and the input-hook rules.
func Open() (*Filter, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	f := &Filter{conn: c, table: &nftables.Table{Family: nftables.TableFamilyINet, Name: Table}}
	c.DelTable(f.table)
	_ = c.Flush() // no table yet is fine
	c.AddTable(f.table)
	f.set4 = &nftables.Set{Table: f.table, Name: "vips4", KeyType: nftables.TypeIPAddr}
	f.set6 = &nftables.Set{Table: f.table, Name: "vips6", KeyType: nftables.TypeIP6Addr}
	for _, s := range []*nftables.Set{f.set4, f.set6} {
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("nftables set %s: %w", s.Name, err)
		}
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	// IPv6 neighbour discovery for a VIP passes.
	for _, icmpType := range []byte{135, 136} {
		c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: append(daddrIn(unix.NFPROTO_IPV6, 24, 16, f.set6),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{icmpType}},
			&expr.Verdict{Kind: expr.VerdictAccept})})
	}
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: append(daddrIn(unix.NFPROTO_IPV4, 16, 4, f.set4), &expr.Verdict{Kind: expr.VerdictDrop})})
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: append(daddrIn(unix.NFPROTO_IPV6, 24, 16, f.set6), &expr.Verdict{Kind: expr.VerdictDrop})})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables table %s: %w", Table, err)
	}
	return f, nil
}

// daddrIn matches packets of family proto whose destination address (at
// offset in the network header) is in set.
func daddrIn(proto byte, offset, size uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

func (f *Filter) elements(addrs []netip.Addr) (v4, v6 []nftables.SetElement) {
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, nftables.SetElement{Key: a.AsSlice()})
		} else {
			v6 = append(v6, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	return v4, v6
}

// Drop starts dropping packets addressed to addrs.
func (f *Filter) Drop(addrs []netip.Addr) error {
	v4, v6 := f.elements(addrs)
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, f.conn.SetAddElements(f.set4, v4))
	}
	if len(v6) > 0 {
		errs = append(errs, f.conn.SetAddElements(f.set6, v6))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: drop %v: %w", addrs, err)
	}
	return nil
}

// Accept stops dropping packets addressed to addrs. Addresses that were
// not dropped are fine.
func (f *Filter) Accept(addrs []netip.Addr) error {
	var errs []error
	for _, a := range addrs {
		v4, v6 := f.elements([]netip.Addr{a})
		set, el := f.set4, v4
		if a.Is6() {
			set, el = f.set6, v6
		}
		if err := f.conn.SetDeleteElements(set, el); err != nil {
			errs = append(errs, err)
			continue
		}
		// One flush per address: deleting an absent element fails the
		// whole batch.
		if err := f.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("accept %v: %w", a, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// Close removes the table.
func (f *Filter) Close() error {
	f.conn.DelTable(f.table)
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: remove table %s: %w", Table, err)
	}
	return nil
}

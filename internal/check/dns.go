package check

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/govs/govs/internal/check/state"
)

func dnsType(s string) (dnsmessage.Type, error) {
	switch strings.ToUpper(s) {
	case "A":
		return dnsmessage.TypeA, nil
	case "NS":
		return dnsmessage.TypeNS, nil
	case "CNAME":
		return dnsmessage.TypeCNAME, nil
	case "SOA":
		return dnsmessage.TypeSOA, nil
	case "MX":
		return dnsmessage.TypeMX, nil
	case "TXT":
		return dnsmessage.TypeTXT, nil
	case "AAAA":
		return dnsmessage.TypeAAAA, nil
	}
	return 0, fmt.Errorf("DNS_CHECK: type %q is not A, NS, CNAME, SOA, MX, TXT or AAAA", s)
}

type dnsProber struct {
	r     resolved
	qtype dnsmessage.Type
	name  dnsmessage.Name
}

func newDNSProber(r resolved) (*dnsProber, error) {
	t, err := dnsType(r.DNSType)
	if err != nil {
		return nil, err
	}
	fqdn := r.DNSName
	if !strings.HasSuffix(fqdn, ".") {
		fqdn += "."
	}
	n, err := dnsmessage.NewName(fqdn)
	if err != nil {
		return nil, fmt.Errorf("DNS_CHECK name %q: %w", r.DNSName, err)
	}
	return &dnsProber{r: r, qtype: t, name: n}, nil
}

// Probe sends one recursive query over UDP and passes on a response with the
// query's ID and RCODE 0, as keepalived does; the answer itself is not
// inspected.
func (p *dnsProber) Probe(ctx context.Context) state.Result {
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fail("DNS query id: %v", err)
	}
	id := binary.BigEndian.Uint16(idb[:])
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: p.name, Type: p.qtype, Class: dnsmessage.ClassINET}},
	}
	q, err := msg.Pack()
	if err != nil {
		return fail("pack DNS query: %v", err)
	}
	c, done, err := p.r.session(ctx, "udp")
	if err != nil {
		return state.Result{Err: err}
	}
	defer done()
	if _, err := c.Write(q); err != nil {
		return fail("send DNS query: %v", unwrapOp(err))
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fail("read DNS response: %v", unwrapOp(err))
		}
		var parser dnsmessage.Parser
		h, err := parser.Start(buf[:n])
		if err != nil || h.ID != id || !h.Response {
			continue // not our answer: keep waiting, like keepalived
		}
		if h.RCode != dnsmessage.RCodeSuccess {
			return fail("DNS %s %s: rcode %v", p.r.DNSType, p.r.DNSName, h.RCode)
		}
		return passed()
	}
}

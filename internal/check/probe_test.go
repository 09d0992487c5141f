package check

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// probe resolves spec against target and runs one attempt.
func probe(t *testing.T, spec Spec, target string) (ok bool, err error) {
	t.Helper()
	if spec.ConnectTimeout == 0 {
		spec.ConnectTimeout = time.Second
	}
	p, perr := NewProber(spec, netip.MustParseAddrPort(target), time.Second)
	if perr != nil {
		t.Fatalf("NewProber: %v", perr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.ConnectTimeout+time.Second)
	defer cancel()
	res := p.Probe(ctx)
	if res.OK == (res.Err != nil) {
		t.Fatalf("inconsistent result %+v", res)
	}
	return res.OK, res.Err
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		return addr
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
}

// fullBacklog returns a loopback TCP address whose accept queue is full, so
// new SYNs are dropped and a connect times out, as with a hung server.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; connects beyond it hang in SYN_SENT.
	for i := 0; i < 4; i++ {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hung := fullBacklog(t)
	tests := []struct {
		name    string
		spec    Spec
		target  string
		wantOK  bool
		wantErr string
	}{
		{"up", Spec{Type: TCP}, l.Addr().String(), true, ""},
		{"connect_ip and connect_port override the real server", Spec{Type: TCP,
			ConnectIP: netip.MustParseAddr("127.0.0.1"), ConnectPort: netip.MustParseAddrPort(l.Addr().String()).Port()}, "127.0.0.2:9", true, ""},
		{"bindto", Spec{Type: TCP, BindTo: netip.MustParseAddr("127.0.0.3")}, l.Addr().String(), true, ""},
		{"bindto and bind_port", Spec{Type: TCP, BindTo: netip.MustParseAddr("127.0.0.4"), BindPort: 40123}, l.Addr().String(), true, ""},
		{"refused", Spec{Type: TCP}, closedPort(t, "tcp"), false, "connection refused"},
		{"timeout", Spec{Type: TCP, ConnectTimeout: 300 * time.Millisecond}, hung, false, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ok, err := probe(t, tt.spec, tt.target)
			if ok != tt.wantOK || (tt.wantErr != "" && !strings.Contains(fmt.Sprint(err), tt.wantErr)) {
				t.Fatalf("ok=%v err=%v; want ok=%v err~%q", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.name == "timeout" && time.Since(start) > time.Second {
				t.Fatalf("timeout took %v, want about connect_timeout", time.Since(start))
			}
		})
	}
}

// recorded is what the test HTTP server saw of a request.
type recorded struct {
	proto, host, conn, ua string
	sni                   string
}

func webServer(t *testing.T, tlsOn bool) (*httptest.Server, func() recorded) {
	t.Helper()
	var mu sync.Mutex
	var last recorded
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = recorded{proto: r.Proto, host: r.Host, conn: r.Header.Get("Connection"), ua: r.UserAgent()}
		if r.TLS != nil {
			last.sni = r.TLS.ServerName
		}
		mu.Unlock()
		switch r.URL.Path {
		case "/", "/ok":
			io.WriteString(w, "hello from govs\n")
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		default:
			http.NotFound(w, r)
		}
	})
	s := httptest.NewUnstartedServer(mux)
	// The plain-HTTP-to-TLS case makes the server log a handshake error.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, func() recorded { mu.Lock(); defer mu.Unlock(); return last }
}

func TestHTTPProbe(t *testing.T) {
	s, last := webServer(t, false)
	addr := s.Listener.Addr().String()
	good := Digest([]byte("hello from govs\n"))
	tests := []struct {
		name    string
		spec    Spec
		target  string
		wantOK  bool
		wantErr string
		want    *recorded
	}{
		{"up", Spec{Type: HTTP, URLs: []URL{{Path: "/ok"}}}, addr, true, "",
			&recorded{proto: "HTTP/1.0", host: addr, ua: "KeepAliveClient"}},
		{"digest matches", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Digest: strings.ToUpper(good)}}}, addr, true, "", nil},
		{"wrong digest", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Digest: strings.Repeat("0", 32)}}}, addr, false, "digest " + good, nil},
		{"wrong status", Spec{Type: HTTP, URLs: []URL{{Path: "/503"}}}, addr, false, "status 503 not in 200-299", nil},
		{"status range accepts 503", Spec{Type: HTTP, URLs: []URL{{Path: "/503", StatusCodes: []StatusRange{{Lo: 200, Hi: 200}, {Lo: 500, Hi: 599}}}}}, addr, true, "", nil},
		{"status list rejects 404", Spec{Type: HTTP, URLs: []URL{{Path: "/missing", StatusCodes: []StatusRange{{Lo: 200, Hi: 200}, {Lo: 503, Hi: 503}}}}}, addr, false, "status 404 not in 200 503", nil},
		{"all urls must pass", Spec{Type: HTTP, URLs: []URL{{Path: "/ok"}, {Path: "/503"}}}, addr, false, "GET /503", nil},
		{"virtualhost and http_protocol 1.1", Spec{Type: HTTP, VirtualHost: "www.example.test", HTTPProtocol: "1.1", URLs: []URL{{Path: "/"}}}, addr, true, "",
			&recorded{proto: "HTTP/1.1", host: "www.example.test", conn: "close", ua: "KeepAliveClient"}},
		{"url virtualhost wins, 1.0C", Spec{Type: HTTP, VirtualHost: "a.test", HTTPProtocol: "1.0C", URLs: []URL{{Path: "/", VirtualHost: "b.test"}}}, addr, true, "",
			&recorded{proto: "HTTP/1.0", host: "b.test", conn: "close", ua: "KeepAliveClient"}},
		{"regex matches", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: `hello from \w+`}}}, addr, true, "", nil},
		{"regex does not match", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: "^goodbye"}}}, addr, false, "does not match regex", nil},
		// PCRE's $ (keepalived's) matches before the page's final newline.
		{"regex anchored at the end", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: `^hello from govs$`}}}, addr, true, "", nil},
		{"regex anchored, no match", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: `^hello$`}}}, addr, false, "does not match regex", nil},
		{"regex_no_match, anchored match", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: `govs$`, RegexNoMatch: true}}}, addr, false, "regex_no_match", nil},
		{"regex_no_match, absent", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: "error", RegexNoMatch: true}}}, addr, true, "", nil},
		{"regex_no_match, present", Spec{Type: HTTP, URLs: []URL{{Path: "/ok", Regex: "govs", RegexNoMatch: true}}}, addr, false, "regex_no_match", nil},
		{"refused", Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, closedPort(t, "tcp"), false, "connection refused", nil},
		{"read timeout", Spec{Type: HTTP, ConnectTimeout: 500 * time.Millisecond, URLs: []URL{{Path: "/slow"}}}, addr, false, "timeout", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := probe(t, tt.spec, tt.target)
			if ok != tt.wantOK || (tt.wantErr != "" && !strings.Contains(fmt.Sprint(err), tt.wantErr)) {
				t.Fatalf("ok=%v err=%v; want ok=%v err~%q", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.want != nil {
				if got := last(); got != *tt.want {
					t.Fatalf("server saw %+v, want %+v", got, *tt.want)
				}
			}
		})
	}
}

func TestSSLProbe(t *testing.T) {
	s, last := webServer(t, true)
	addr := s.Listener.Addr().String()
	tests := []struct {
		name    string
		spec    Spec
		wantOK  bool
		wantErr string
		wantSNI string
	}{
		{"self-signed accepted like keepalived", Spec{Type: SSL, URLs: []URL{{Path: "/ok", Digest: Digest([]byte("hello from govs\n"))}}}, true, "", ""},
		{"sni from virtualhost", Spec{Type: SSL, VirtualHost: "www.example.test", TLS: TLSOptions{EnableSNI: true}, URLs: []URL{{Path: "/"}}}, true, "", "www.example.test"},
		{"sni_name", Spec{Type: SSL, TLS: TLSOptions{EnableSNI: true, ServerName: "sni.example.test"}, URLs: []URL{{Path: "/"}}}, true, "", "sni.example.test"},
		{"wrong status over TLS", Spec{Type: SSL, URLs: []URL{{Path: "/503"}}}, false, "status 503", ""},
		{"plain HTTP to a TLS port", Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, false, "status 400", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := probe(t, tt.spec, addr)
			if ok != tt.wantOK || (tt.wantErr != "" && !strings.Contains(fmt.Sprint(err), tt.wantErr)) {
				t.Fatalf("ok=%v err=%v; want ok=%v err~%q", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.wantOK && last().sni != tt.wantSNI {
				t.Fatalf("SNI %q, want %q", last().sni, tt.wantSNI)
			}
		})
	}
	// A plain server on an SSL_GET check fails the handshake.
	plain, _ := webServer(t, false)
	if ok, err := probe(t, Spec{Type: SSL, URLs: []URL{{Path: "/"}}}, plain.Listener.Addr().String()); ok || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("SSL_GET to plain HTTP: ok=%v err=%v", ok, err)
	}
}

// smtpServer speaks just enough SMTP; greeting and helo are the codes it
// answers with.
func smtpServer(t *testing.T, greeting, helo int) (string, chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	lines := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%d mail.example.test ESMTP govs-test\r\n", greeting)
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					lines <- line
					switch {
					case strings.HasPrefix(line, "HELO "):
						fmt.Fprintf(c, "%d-mail.example.test\r\n%d pleased to meet you\r\n", helo, helo)
					case line == "QUIT":
						fmt.Fprintf(c, "221 bye\r\n")
						return
					default:
						fmt.Fprintf(c, "500 what\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().String(), lines
}

func TestSMTPProbe(t *testing.T) {
	addr, lines := smtpServer(t, 220, 250)
	if ok, err := probe(t, Spec{Type: SMTP, HELOName: "lb.example.test"}, addr); !ok {
		t.Fatalf("up: %v", err)
	}
	if got := <-lines; got != "HELO lb.example.test" {
		t.Fatalf("server got %q", got)
	}
	if got := <-lines; got != "QUIT" {
		t.Fatalf("server got %q", got)
	}
	addr, lines = smtpServer(t, 220, 250)
	probe(t, Spec{Type: SMTP}, addr)
	if got := <-lines; got != "HELO "+DefaultHELO {
		t.Fatalf("default helo: server got %q", got)
	}
	bad554, _ := smtpServer(t, 554, 250)
	badHelo, _ := smtpServer(t, 220, 501)
	for _, tc := range []struct{ name, addr, want string }{
		{"bad greeting", bad554, "SMTP greeting: 554"},
		{"bad HELO", badHelo, "SMTP HELO " + DefaultHELO + ": 501"},
		{"refused", closedPort(t, "tcp"), "connection refused"},
	} {
		if ok, err := probe(t, Spec{Type: SMTP}, tc.addr); ok || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ok=%v err=%v, want %q", tc.name, ok, err, tc.want)
		}
	}
}

// dnsServer answers queries for zone "example.test." (SOA and A) and
// NXDOMAIN for the rest; it sends a reply with a wrong ID first, which the
// probe must ignore.
func dnsServer(t *testing.T) (string, chan dnsmessage.Question) {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	qs := make(chan dnsmessage.Question, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			qs <- q
			resp := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, Authoritative: true},
				Questions: []dnsmessage.Question{q}}
			switch {
			case q.Name.String() == "example.test." && q.Type == dnsmessage.TypeA:
				resp.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.AResource{A: [4]byte{198, 18, 0, 2}}}}
			case q.Name.String() == "example.test." && q.Type == dnsmessage.TypeSOA:
				resp.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.example.test."), MBox: dnsmessage.MustNewName("hostmaster.example.test."),
						Serial: 1, Refresh: 60, Retry: 60, Expire: 600, MinTTL: 60}}}
			default:
				resp.RCode = dnsmessage.RCodeNameError
			}
			wrong := resp
			wrong.ID = h.ID + 1
			if b, err := wrong.Pack(); err == nil {
				c.WriteTo(b, from)
			}
			if b, err := resp.Pack(); err == nil {
				c.WriteTo(b, from)
			}
		}
	}()
	return c.LocalAddr().String(), qs
}

func TestDNSProbe(t *testing.T) {
	addr, qs := dnsServer(t)
	tests := []struct {
		name     string
		spec     Spec
		target   string
		wantOK   bool
		wantErr  string
		wantQ    string
		wantType dnsmessage.Type
	}{
		{"A", Spec{Type: DNS, DNSType: "A", DNSName: "example.test"}, addr, true, "", "example.test.", dnsmessage.TypeA},
		{"SOA", Spec{Type: DNS, DNSType: "soa", DNSName: "example.test."}, addr, true, "", "example.test.", dnsmessage.TypeSOA},
		{"NXDOMAIN", Spec{Type: DNS, DNSType: "A", DNSName: "nope.test"}, addr, false, "RCodeNameError", "nope.test.", dnsmessage.TypeA},
		{"default is SOA of the root", Spec{Type: DNS}, addr, false, "rcode", ".", dnsmessage.TypeSOA},
		{"no server", Spec{Type: DNS}, closedPort(t, "udp"), false, "connection refused", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := probe(t, tt.spec, tt.target)
			if ok != tt.wantOK || (tt.wantErr != "" && !strings.Contains(fmt.Sprint(err), tt.wantErr)) {
				t.Fatalf("ok=%v err=%v; want ok=%v err~%q", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.wantQ != "" {
				q := <-qs
				if q.Name.String() != tt.wantQ || q.Type != tt.wantType {
					t.Fatalf("server got %v %v, want %s %v", q.Name, q.Type, tt.wantQ, tt.wantType)
				}
			}
		})
	}
}

func udpEcho(t *testing.T, reply func([]byte) []byte) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n]); out != nil {
				c.WriteTo(out, from)
			}
		}
	}()
	return c.LocalAddr().String()
}

func TestUDPProbe(t *testing.T) {
	echo := udpEcho(t, func(b []byte) []byte { return append([]byte(nil), b...) })
	silent := udpEcho(t, func([]byte) []byte { return nil })
	long := udpEcho(t, func([]byte) []byte { return make([]byte, 300) })
	payload := []byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct {
		name    string
		spec    Spec
		target  string
		wantOK  bool
		wantErr string
	}{
		{"echo with require_reply", Spec{Type: UDP, Payload: payload, RequireReply: true}, echo, true, ""},
		{"reply pattern with wildcards", Spec{Type: UDP, Payload: payload, RequireReply: true, ReplyPattern: "dE xd"}, echo, true, ""},
		{"reply pattern mismatch", Spec{Type: UDP, Payload: payload, RequireReply: true, ReplyPattern: "de af"}, echo, false, "byte 1"},
		{"reply too short", Spec{Type: UDP, Payload: payload, RequireReply: true, MinReplyLength: 8}, echo, false, "length 4"},
		{"reply too long (default max 255)", Spec{Type: UDP, RequireReply: true}, long, false, "length 300"},
		{"random payload echoed", Spec{Type: UDP, RequireReply: true}, echo, true, ""},
		{"silence is up without require_reply", Spec{Type: UDP, ConnectTimeout: 300 * time.Millisecond}, silent, true, ""},
		{"silence is down with require_reply", Spec{Type: UDP, RequireReply: true, ConnectTimeout: 300 * time.Millisecond}, silent, false, "no reply"},
		{"port unreachable is down", Spec{Type: UDP}, closedPort(t, "udp"), false, "port unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := probe(t, tt.spec, tt.target)
			if ok != tt.wantOK || (tt.wantErr != "" && !strings.Contains(fmt.Sprint(err), tt.wantErr)) {
				t.Fatalf("ok=%v err=%v; want ok=%v err~%q", ok, err, tt.wantOK, tt.wantErr)
			}
		})
	}
}

func TestPingProbe(t *testing.T) {
	for _, target := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(target, func(t *testing.T) {
			ok, err := probe(t, Spec{Type: Ping}, target)
			if err != nil && strings.Contains(err.Error(), "open ICMP socket") {
				t.Skipf("no ICMP socket (not root and ping_group_range excludes us): %v", err)
			}
			if !ok {
				t.Fatalf("ping %s: %v", target, err)
			}
		})
	}
}

func rsAddrFor(ip string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(ip), 0) }

package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/check/state"
)

// maxBody bounds how much of a page is read and hashed, maxHeader the
// status line and headers before it.
const (
	maxBody   = 16 << 20
	maxHeader = 64 << 10
)

type httpProber struct {
	r   resolved
	tls *tls.Config
	// regex holds each url's compiled regex (nil: none), by index.
	regex []*regexp.Regexp
}

func newHTTPProber(r resolved) (*httpProber, error) {
	p := &httpProber{r: r, regex: make([]*regexp.Regexp, len(r.URLs))}
	for i, u := range r.URLs {
		if u.Regex != "" {
			re, err := regexp.Compile(u.Regex)
			if err != nil {
				return nil, fmt.Errorf("url %s: regex %q: %w", u.Path, u.Regex, err)
			}
			p.regex[i] = re
		}
	}
	if r.Type != SSL {
		return p, nil
	}
	// keepalived does not verify the real server's certificate unless a CA
	// is configured: health checks talk to self-signed backends.
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // matches keepalived
	if r.TLS.CAFile != "" {
		pem, err := os.ReadFile(r.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA file %s: no certificates", r.TLS.CAFile)
		}
		cfg.InsecureSkipVerify = false
		cfg.RootCAs = pool
		cfg.ServerName = r.target.Addr().String()
	}
	if r.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(r.TLS.CertFile, r.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if r.TLS.EnableSNI {
		name := r.TLS.ServerName
		if name == "" {
			name = r.VirtualHost
		}
		if name != "" {
			cfg.ServerName = name
		}
	}
	p.tls = cfg
	return p, nil
}

// Probe fetches every url in turn; the check passes only if all do.
func (p *httpProber) Probe(ctx context.Context) state.Result {
	for i, u := range p.r.URLs {
		if err := p.get(ctx, u, p.regex[i]); err != nil {
			return state.Result{Err: fmt.Errorf("GET %s: %w", u.Path, err)}
		}
	}
	return passed()
}

// request builds the request keepalived sends, byte for byte in spirit: the
// protocol line, its User-Agent, Connection: close for 1.0C and 1.1, and the
// virtual host or the target address as Host.
func (p *httpProber) request(u URL) string {
	minor := "0"
	if p.r.HTTPProtocol == "1.1" {
		minor = "1"
	}
	host := u.VirtualHost
	if host == "" {
		host = p.r.VirtualHost
	}
	if host == "" {
		host = p.r.target.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.%s\r\nUser-Agent: KeepAliveClient\r\n", u.Path, minor)
	if p.r.HTTPProtocol != "1.0" {
		b.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&b, "Host: %s\r\n\r\n", host)
	return b.String()
}

func (p *httpProber) get(ctx context.Context, u URL, re *regexp.Regexp) error {
	c, err := p.r.dial(ctx, "tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.SetDeadline(deadline(ctx, p.r.ConnectTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	var conn net.Conn = c
	if p.tls != nil {
		tc := tls.Client(c, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake: %w", unwrapOp(err))
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, p.request(u)); err != nil {
		return fmt.Errorf("send request: %w", unwrapOp(err))
	}
	req := &http.Request{Method: http.MethodGet}
	budget := &budgetReader{r: conn, n: maxHeader}
	resp, err := http.ReadResponse(bufio.NewReader(budget), req)
	if err != nil {
		if errors.Is(err, errReadBudget) {
			return fmt.Errorf("read response: status line and headers longer than %d bytes", maxHeader)
		}
		return fmt.Errorf("read response: %w", unwrapOp(err))
	}
	budget.n = maxBody + 1 // the body is cut at maxBody below
	defer resp.Body.Close()
	h := md5.New()
	var w io.Writer = h
	var kept *bytes.Buffer
	if re != nil {
		kept = &bytes.Buffer{}
		w = io.MultiWriter(h, &limitedWriter{w: kept, n: maxRegexBody})
	}
	if _, err := io.Copy(w, io.LimitReader(resp.Body, maxBody)); err != nil {
		return fmt.Errorf("read body: %w", unwrapOp(err))
	}
	if !statusAccepted(resp.StatusCode, u.StatusCodes) {
		return fmt.Errorf("status %d not in %s", resp.StatusCode, formatRanges(u.StatusCodes))
	}
	if u.Digest != "" {
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, u.Digest) {
			return fmt.Errorf("digest %s, want %s", got, strings.ToLower(u.Digest))
		}
	}
	if re != nil {
		switch matched := matchPCREDollar(re, kept.Bytes()); {
		case !matched && !u.RegexNoMatch:
			return fmt.Errorf("body does not match regex %q", u.Regex)
		case matched && u.RegexNoMatch:
			return fmt.Errorf("body matches regex %q (regex_no_match)", u.Regex)
		}
	}
	return nil
}

// matchPCREDollar matches re as keepalived's PCRE2 would for the common
// anchors: there, $ also matches before a final newline, which pages
// usually end with, so "^ok$" matches "ok\n". Go's $ matches only at the
// very end, so a body ending in a newline is tried without it too.
func matchPCREDollar(re *regexp.Regexp, body []byte) bool {
	if re.Match(body) {
		return true
	}
	trimmed, ok := bytes.CutSuffix(body, []byte("\n"))
	return ok && re.Match(trimmed)
}

// maxRegexBody bounds how much of a page a url's regex is matched against.
const maxRegexBody = 1 << 20

// limitedWriter keeps the first n bytes written and discards the rest, so
// a huge page costs no more memory than n.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if keep := min(len(p), l.n); keep > 0 {
		if _, err := l.w.Write(p[:keep]); err != nil {
			return 0, err
		}
		l.n -= keep
	}
	return len(p), nil
}

func statusAccepted(code int, ranges []StatusRange) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

func formatRanges(ranges []StatusRange) string {
	if len(ranges) == 0 {
		return "200-299"
	}
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		if r.Lo == r.Hi {
			parts[i] = strconv.Itoa(r.Lo)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.Lo, r.Hi)
		}
	}
	return strings.Join(parts, " ")
}

// Digest computes what keepalived's genhash prints for a body: its MD5 in hex.
func Digest(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

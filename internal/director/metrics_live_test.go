package director_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/status"
)

// TestPrivilegedMetricsScrape scrapes a running `govs run --metrics` in a
// namespace: a real server that fails its check is exported with up 0 (and
// its checker down, with failures counted), a healthy one with up 1 and its
// checker's latency; the reload and build series are there; the
// connection stream lists the connections just made; the status page is
// served.
func TestPrivilegedMetricsScrape(t *testing.T) {
	netnstest.RequireRoot(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()
	const vip = "198.18.0.100"
	lan, client, director := flatLAN(t, "m", vip)
	real := netnstest.NewNS(t, "mweb")
	lan.Join(real, "pw", "198.18.0.11/24")
	drRealServer(t, real, vip)
	conf := filepath.Join(dir, "keepalived.conf")
	// 198.18.0.12 does not exist: its check fails.
	writeFile(t, conf, `global_defs {
    govs_xdp_interface eth0
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 198.18.0.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`)
	const listen = "198.18.0.2:9500" // the director's own namespace: nothing else binds it
	cmd := director.Start(govs, "run", "-f", conf, "--socket", filepath.Join(dir, "govs.sock"), "--metrics", listen)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	fetch := func(path string) (string, error) {
		var body []byte
		err := director.Do(func() error {
			c, err := net.DialTimeout("tcp", listen, 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: govs\r\n\r\n", path)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", path, resp.Status)
			}
			body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			return err
		})
		return string(body), err
	}
	up := `govs_realserver_up{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="%s",remote_port="80"} %d`
	var scrape string
	waitUntil(t, "the failed real server exported with up 0", 30*time.Second, func() bool {
		s, err := fetch("/metrics")
		scrape = s
		return err == nil && strings.Contains(s, fmt.Sprintf(up, "198.18.0.12", 0)) && strings.Contains(s, fmt.Sprintf(up, "198.18.0.11", 1))
	})
	for _, want := range []string{
		`govs_checker_up{checker="TCP_CHECK 198.18.0.12:80",local_address="198.18.0.100"`,
		`govs_checker_results_total{checker="TCP_CHECK 198.18.0.12:80",local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80",result="failure"}`,
		`govs_checker_probe_duration_seconds_count{checker="TCP_CHECK 198.18.0.11:80"`,
		"govs_config_last_reload_successful 1",
		"govs_build_info{",
		"govs_connection_table_size 262144",
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", scrape)
	}

	// A connection held open is in the stream.
	c, err := dialVIP(client, vip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stream string
	waitUntil(t, "the connection in /api/v1/connections", 10*time.Second, func() bool {
		s, err := fetch("/api/v1/connections")
		stream = s
		return err == nil && strings.Contains(s, `"client":"`+c.LocalAddr().String()+`"`)
	})
	for _, line := range strings.Split(strings.TrimSpace(stream), "\n") {
		var conn status.Connection
		if err := json.Unmarshal([]byte(line), &conn); err != nil {
			t.Errorf("stream line %q: %v", line, err)
		}
	}
	if page, err := fetch("/"); err != nil || !strings.Contains(page, "<title>govs status</title>") {
		t.Errorf("status page: %v", err)
	}
}

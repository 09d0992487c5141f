package director_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedHTTPGetRegex runs `govs run` in a namespace with nginx as
// four real servers and HTTP_GET checkers whose regex or regex_no_match do
// or do not match nginx's answer: the servers whose check fails go to
// weight 0 (inhibit_on_failure), the others stay at 1. keepalived ignores
// the digest and status when a regex is given, so the body decides.
func TestPrivilegedHTTPGetRegex(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	ns := netnstest.NewNS(t, "rx")
	ns.MustRun("ip", "link", "set", "lo", "up")
	reals := []struct {
		addr  string
		check string
		up    bool
	}{
		{"198.18.0.21", `regex "^govs [a-z]+$"`, true},
		{"198.18.0.22", `regex "^nothing like it"`, false},
		{"198.18.0.23", "regex govs\n                regex_no_match", false},
		{"198.18.0.24", "regex absent\n                regex_no_match", true},
	}
	dir := t.TempDir()
	var listen, servers string
	for _, r := range reals {
		ns.MustRun("ip", "addr", "add", r.addr+"/32", "dev", "lo")
		listen += fmt.Sprintf("\t\tlisten %s:80;\n", r.addr)
		servers += fmt.Sprintf(`    real_server %s 80 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health
                %s
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
`, r.addr, r.check)
	}
	nginxConf := filepath.Join(dir, "nginx.conf")
	writeFile(t, nginxConf, fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
%[2]s		location = /health { return 200 "govs ok\n"; }
	}
}
`, dir, listen))
	ns.Start(nginx, "-c", nginxConf, "-p", dir, "-g", "daemon off;")
	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, "virtual_server 198.18.0.100 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n"+servers+"}\n")
	sock := filepath.Join(dir, "govs.sock")
	cmd := ns.Start(govs, "run", "-f", conf, "--socket", sock, "--no-dataplane")

	want := map[netip.Addr]int{}
	for _, r := range reals {
		want[netip.MustParseAddr(r.addr)] = map[bool]int{true: 1, false: 0}[r.up]
	}
	// Every checker has run once within delay_loop (1 s) plus its warm-up
	// spread; failing ones need retry × delay_before_retry more.
	var got map[netip.Addr]int
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = weights(t, sock)
		if equalWeights(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !equalWeights(got, want) {
		t.Fatalf("weights %v, want %v", got, want)
	}
	// And they stay so: the matching ones are not flapping.
	time.Sleep(2 * time.Second)
	if got := weights(t, sock); !equalWeights(got, want) {
		t.Errorf("weights changed to %v, want %v", got, want)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// weights reads the running director's real-server weights (nil while it
// does not answer yet).
func weights(t *testing.T, sock string) map[netip.Addr]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, sock)
	if err != nil {
		return nil
	}
	defer c.Close()
	snap, err := c.Status(ctx)
	if err != nil {
		return nil
	}
	out := map[netip.Addr]int{}
	for _, s := range snap.Services {
		for _, r := range s.Reals {
			out[r.Addr] = r.Weight
		}
	}
	return out
}

func equalWeights(a, b map[netip.Addr]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}

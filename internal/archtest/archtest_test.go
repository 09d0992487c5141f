package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/govs/govs/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}

// pure lists packages that hold logic only: they must build and test without
// root, a kernel feature or a socket, so they may not depend on OS glue.
var pure = []string{
	"github.com/govs/govs/internal/config",
	"github.com/govs/govs/internal/maglev",
	"github.com/govs/govs/internal/sched",
	"github.com/govs/govs/internal/vrrp",
	"github.com/govs/govs/internal/check/state",
	"github.com/govs/govs/internal/status",
	"github.com/govs/govs/internal/connsync/proto",
	"github.com/govs/govs/internal/desired",
	"github.com/govs/govs/internal/desired/corpus",
	"github.com/govs/govs/internal/dpstate",
	"github.com/govs/govs/internal/checkspec",
}

var forbiddenInPure = []string{
	"github.com/cilium/ebpf",
	"github.com/vishvananda/netlink",
	"github.com/vishvananda/netns",
	"golang.org/x/sys/unix",
	"os/exec",
}

func TestPurePackagesHaveNoOSGlue(t *testing.T) {
	byPath := map[string]pkg{}
	for _, p := range listPackages(t) {
		byPath[p.ImportPath] = p
	}
	for _, path := range pure {
		p, ok := byPath[path]
		if !ok {
			continue // not written yet
		}
		for _, dep := range p.Deps {
			for _, bad := range forbiddenInPure {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("pure package %s depends on %s", path, dep)
				}
			}
		}
	}
}

package dataplane

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/govs/govs/internal/netnstest"
)

// TestVerifierBudget: the balancer verifies within well under the kernel's
// limit of a million processed instructions, so the next change to it
// fails here, with a number, before it fails to load at all. The program's
// paths multiply at every branch; the schedulers' scans (pick_least,
// pick_twos, pick_local and its helpers) and embryo_take are global
// functions, verified once apart from them, for that reason.
func TestVerifierBudget(t *testing.T) {
	netnstest.RequireRoot(t)
	spec, err := loadBalancer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := regexp.MustCompile(`processed (\d+) insns`).FindStringSubmatch(c.Programs["govs_xdp"].VerifierLog)
	if m == nil {
		t.Fatalf("no instruction count in the verifier log:\n%s", c.Programs["govs_xdp"].VerifierLog)
	}
	n, _ := strconv.Atoi(m[1])
	t.Logf("govs_xdp: the verifier processed %d instructions (limit 1000000)", n)
	if n > 700000 {
		t.Errorf("the verifier processed %d instructions: within 30%% of the kernel's limit", n)
	}
}

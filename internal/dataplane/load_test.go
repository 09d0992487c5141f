package dataplane

import (
	"testing"

	"github.com/govs/govs/internal/netnstest"
)

func TestPrivilegedLoad(t *testing.T) {
	netnstest.RequireRoot(t)
	d, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

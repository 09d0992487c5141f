package diag

import (
	"errors"
	"testing"
)

func TestList(t *testing.T) {
	var l List
	l.Warnf(Pos{File: "b.conf", Line: 1}, "x", "x: later file")
	l.Errorf(Pos{File: "a.conf", Line: 9}, "priority", "priority: number 300 outside range [1, 255]")
	l.Warnf(Pos{File: "a.conf", Line: 2}, "y", "y: earlier line")
	l.Sort()
	want := []string{
		"a.conf:2: warning: y: earlier line",
		"a.conf:9: priority: number 300 outside range [1, 255]",
		"b.conf:1: warning: x: later file",
	}
	for i, d := range l {
		if d.String() != want[i] {
			t.Errorf("[%d] = %q, want %q", i, d, want[i])
		}
	}
	if !l.HasErrors() || len(l.Errors()) != 1 || len(l.Warnings()) != 2 {
		t.Errorf("HasErrors/Errors/Warnings wrong: %v", l)
	}
	err := l.Err()
	var d Diagnostic
	if err == nil || !errors.As(err, &d) || d.Keyword != "priority" {
		t.Errorf("Err() = %v, want the priority error reachable with errors.As", err)
	}
	if (List{}).Err() != nil || l.Warnings().Err() != nil {
		t.Error("Err() of a list without errors is not nil")
	}
}

func TestDiagnosticFields(t *testing.T) {
	d := Diagnostic{Severity: Error, Pos: Pos{File: "k.conf", Line: 26}, Keyword: "virtual_ipaddress", Message: "virtual_ipaddress: invalid IP address '1921681169'"}
	if d.File != "k.conf" || d.Line != 26 {
		t.Errorf("File, Line = %q, %d", d.File, d.Line)
	}
	if got, want := d.Error(), "k.conf:26: virtual_ipaddress: invalid IP address '1921681169'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Package diag holds the positions and diagnostics that the keepalived.conf
// lexer and parser report: every problem carries the file and line it was
// found at, so `govs check` can print it as FILE:LINE: message.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

// String formats the position as FILE:LINE.
func (p Pos) String() string {
	if p.File == "" && p.Line == 0 {
		return "-"
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// IsValid reports whether the position points somewhere.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Severity says whether a diagnostic stops the configuration from loading.
type Severity int

const (
	// Error makes the configuration unusable.
	Error Severity = iota
	// Warning is reported, but the configuration still loads.
	Warning
)

// String names the severity.
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a configuration.
type Diagnostic struct {
	Severity Severity
	// Pos is embedded so File and Line read directly off the diagnostic.
	Pos
	// Keyword is the configuration keyword the problem is about (may be empty
	// for purely lexical problems).
	Keyword string
	// Message is complete on its own and names the keyword.
	Message string
}

// String formats the diagnostic as FILE:LINE: message, prefixing warnings
// with "warning: ".
func (d Diagnostic) String() string {
	prefix := ""
	if d.Severity == Warning {
		prefix = "warning: "
	}
	return fmt.Sprintf("%s: %s%s", d.Pos, prefix, d.Message)
}

// Error makes a Diagnostic usable as an error value.
func (d Diagnostic) Error() string { return d.String() }

// List collects diagnostics in the order they were found.
type List []Diagnostic

// Errorf appends an error about keyword at pos.
func (l *List) Errorf(pos Pos, keyword, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Error, Pos: pos, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning about keyword at pos.
func (l *List) Warnf(pos Pos, keyword, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Warning, Pos: pos, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// HasErrors reports whether any diagnostic is an error.
func (l List) HasErrors() bool {
	for _, d := range l {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (l List) Errors() List { return l.filter(Error) }

// Warnings returns only the warnings.
func (l List) Warnings() List { return l.filter(Warning) }

func (l List) filter(s Severity) List {
	var out List
	for _, d := range l {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders the list by file, then line, keeping the discovery order of
// diagnostics on the same line.
func (l List) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Pos.File != l[j].Pos.File {
			return l[i].Pos.File < l[j].Pos.File
		}
		return l[i].Pos.Line < l[j].Pos.Line
	})
}

// Err returns the list as an error when it holds at least one error, else nil.
func (l List) Err() error {
	if !l.HasErrors() {
		return nil
	}
	return &ListError{List: l.Errors()}
}

// ListError is the error returned for a configuration with errors.
type ListError struct {
	List List
}

// Error joins every error, one per line.
func (e *ListError) Error() string {
	var b strings.Builder
	for i, d := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// Unwrap exposes each diagnostic to errors.Is and errors.As.
func (e *ListError) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, d := range e.List {
		out[i] = d
	}
	return out
}

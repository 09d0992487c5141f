package lexer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FS is where configuration files are read from. The parser only reads
// through it, so tests can run on in-memory files.
type FS interface {
	ReadFile(name string) ([]byte, error)
	// Glob returns the names matching a filepath.Match pattern.
	Glob(pattern string) ([]string, error)
}

// OSFS reads the real file system.
type OSFS struct{}

// ReadFile reads a file with os.ReadFile.
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Glob expands a pattern with filepath.Glob.
func (OSFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// MapFS is an in-memory FS keyed by file name (absolute or relative, as the
// configuration refers to them).
type MapFS map[string]string

// ReadFile returns the content stored under name.
func (m MapFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[filepath.Clean(name)]
	if !ok {
		s, ok = m[name]
	}
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

// Glob matches pattern against the stored names, sorted.
func (m MapFS) Glob(pattern string) ([]string, error) {
	pattern = filepath.Clean(pattern)
	var out []string
	for name := range m {
		ok, err := filepath.Match(pattern, filepath.Clean(name))
		if err != nil {
			return nil, fmt.Errorf("match %q: %w", pattern, err)
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

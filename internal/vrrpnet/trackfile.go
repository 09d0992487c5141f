package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fsnotify/fsnotify"

	"github.com/govs/govs/internal/vrrp"
)

// fileEvent is a tracked file's value after it changed.
type fileEvent struct {
	name  string
	value int
}

// trackFileRead bounds what is read of a tracked file: a number.
const trackFileRead = 127

// readTrackFile is a tracked file's value as keepalived reads it: a number
// in text at the start of the file (decimal, 0x hex or 0 octal, after
// blanks), 0 when the file is missing or holds none.
func readTrackFile(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, trackFileRead))
	if err != nil {
		return 0
	}
	return leadingInt(string(b))
}

// leadingInt reads the number a string starts with, as C's strtol with
// base 0; none is 0, and a value past ±254 is clamped (the machine keeps
// no more).
func leadingInt(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	switch {
	case i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && digit(s[i+2], 16):
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	j := i
	for j < len(s) && digit(s[j], base) {
		j++
	}
	n, err := strconv.ParseInt(s[i:j], base, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || n > 254:
		n = 254
	case err != nil:
		return 0
	}
	if neg {
		n = -n
	}
	return int(n)
}

func digit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case c >= 'a' && c <= 'f':
		return base == 16
	case c >= 'A' && c <= 'F':
		return base == 16
	}
	return false
}

// initTrackFile carries out init_file: the value is written when the file
// does not exist, or always with overwrite.
func initTrackFile(f vrrp.TrackFile) error {
	if f.Init == nil {
		return nil
	}
	if !f.InitOverwrite {
		if _, err := os.Stat(f.Path); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	if err := os.WriteFile(f.Path, []byte(strconv.Itoa(*f.Init)+"\n"), 0o644); err != nil {
		return fmt.Errorf("track_file %s: init_file: %w", f.Name, err)
	}
	return nil
}

// fileWatch follows tracked files through their directories (a file may
// be replaced by a rename, or not exist yet): any change to one is read
// again and reported.
type fileWatch struct {
	w      *fsnotify.Watcher
	byPath map[string][]vrrp.TrackFile
}

// watchFiles starts watching files; it fails when a file's directory
// cannot be watched (keepalived drops such a file with an error).
func watchFiles(files []vrrp.TrackFile) (*fileWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("track_file: %w", err)
	}
	fw := &fileWatch{w: w, byPath: map[string][]vrrp.TrackFile{}}
	dirs := map[string]bool{}
	for _, f := range files {
		p := filepath.Clean(f.Path)
		fw.byPath[p] = append(fw.byPath[p], f)
		if d := filepath.Dir(p); !dirs[d] {
			dirs[d] = true
			if err := w.Add(d); err != nil {
				w.Close()
				return nil, fmt.Errorf("track_file %s: watch %s: %w", f.Name, d, err)
			}
		}
	}
	return fw, nil
}

// run reports every watched file's value after each change until ctx
// ends.
func (fw *fileWatch) run(ctx context.Context, log *slog.Logger, out chan<- fileEvent) {
	defer fw.w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			log.Warn("track_file: watching the files", "err", err)
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			for _, f := range fw.byPath[filepath.Clean(ev.Name)] {
				send(ctx, out, fileEvent{name: f.Name, value: readTrackFile(f.Path)})
			}
		}
	}
}

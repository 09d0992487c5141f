// Package notifyfifo writes keepalived's notify FIFO: one line per state
// change (`INSTANCE "VI_1" MASTER 100`) to a named pipe that a script, or
// anything else, reads. Writes never block the writer: the FIFO is held
// open for reading and writing, so it takes lines with no reader yet, and a
// line that does not fit in a full pipe is dropped and counted.
package notifyfifo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// FIFO is an open notify FIFO.
type FIFO struct {
	path    string
	created bool

	mu sync.Mutex
	// fd is a raw descriptor, not an *os.File: Go's poller would park a
	// write to a full pipe until it drains, and the point is never to wait.
	fd      int
	dropped uint64
}

// Open opens the FIFO at path, making it (mode 0600, owned by uid/gid
// when they are not -1) if nothing is there. A file there that is not a
// FIFO is an error.
func Open(path string, uid, gid int) (*FIFO, error) {
	created := false
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := unix.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("notify fifo %s: %w", path, err)
		}
		created = true
		if uid >= 0 || gid >= 0 {
			if err := os.Lchown(path, uid, gid); err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("notify fifo %s: %w", path, err)
			}
		}
	case err != nil:
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	case st.Mode()&fs.ModeNamedPipe == 0:
		return nil, fmt.Errorf("notify fifo %s: exists and is not a FIFO", path)
	}
	// O_RDWR: the open does not wait for a reader, and writes do not fail
	// while there is none. O_NONBLOCK: a full pipe drops the line rather
	// than stopping the VRRP loop.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if created {
			os.Remove(path)
		}
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	}
	return &FIFO{path: path, created: created, fd: fd}, nil
}

// Path is where the FIFO is.
func (p *FIFO) Path() string { return p.path }

// Write writes one line (a newline is added). It never blocks.
func (p *FIFO) Write(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return
	}
	// One write of at most PIPE_BUF bytes is atomic: readers never see
	// half a line; a full pipe takes none of it (EAGAIN).
	if _, err := unix.Write(p.fd, []byte(line+"\n")); err != nil {
		p.dropped++
	}
}

// Dropped counts the lines a full pipe did not take.
func (p *FIFO) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Close closes the FIFO and removes it if Open made it.
func (p *FIFO) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	if p.created {
		if rerr := os.Remove(p.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

package notifyfifo

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	p, err := Open(path, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("made %v, %v; want a FIFO of mode 0600", st.Mode(), err)
	}
	// Lines written before any reader are kept for it.
	p.Write(`INSTANCE "VI_1" BACKUP 100`)
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.Write(`INSTANCE "VI_1" MASTER 100`)
	br := bufio.NewReader(r)
	for _, want := range []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" MASTER 100`} {
		line, err := br.ReadString('\n')
		if err != nil || strings.TrimSuffix(line, "\n") != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	// A pipe nobody empties fills; the lines past it are dropped, and the
	// writer does not block.
	long := strings.Repeat("x", 1000)
	for range 200 {
		p.Write(long)
	}
	if p.Dropped() == 0 {
		t.Error("200 kB into a 64 kB pipe and nothing dropped")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the FIFO it made is still there: %v", err)
	}
}

func TestOpenKeepsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(plain, -1, -1); err == nil {
		t.Error("a regular file was taken for a FIFO")
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	p, err := Open(fifo, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(fifo); err != nil {
		t.Errorf("a FIFO that was there before was removed: %v", err)
	}
}

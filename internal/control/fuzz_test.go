package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzHandle feeds arbitrary bytes through the server's framing and request
// handling: whatever a client sends, the answer is one well-formed response
// line and never a panic.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"op":"status"}`,
		`{"op":"connections"}`,
		`{"version":1,"op":"reload"}`,
		`{"version":2,"op":"status"}`,
		`{"op":null}`,
		`{"version":1e999}`,
		"\x00\xff",
		`[{"op":"status"}]`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{cfg: Config{
		Status: fakeSnapshot,
		Reload: func() error { return errors.New("bad config") },
		Logger: quietLogger(),
	}}
	f.Fuzz(func(t *testing.T, in []byte) {
		line, err := readLine(bufio.NewReader(bytes.NewReader(in)), MaxRequestSize)
		if err != nil {
			return
		}
		resp := s.handle(line)
		var buf bytes.Buffer
		if err := writeResponse(&buf, resp); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("response is not one line: %q", out)
		}
		var back Response
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if back.OK == (back.Error != "") || back.Version != ProtocolVersion {
			t.Fatalf("inconsistent response %+v", back)
		}
		if back.Status != nil && back.Status.Connections != nil {
			t.Fatal("status response carries connections")
		}
	})
}

package webserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

func TestServeAnswersItsName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, "web7") }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/any/path")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "web7\n" || resp.Header.Get("X-Server") != "web7" {
		t.Errorf("got %q (X-Server %q), want web7", body, resp.Header.Get("X-Server"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

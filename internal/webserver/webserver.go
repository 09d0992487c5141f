// Package webserver is a tiny HTTP server that answers every request with its
// name: the stand-in web server of the lab when nginx is not installed, so a
// client can see which real server answered.
package webserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Handler answers every request with "name\n".
func Handler(name string) http.Handler {
	body := []byte(name + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Server", name)
		_, _ = w.Write(body)
	})
}

// Serve answers on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, name string) error {
	srv := &http.Server{Handler: Handler(name), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

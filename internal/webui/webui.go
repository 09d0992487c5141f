// Package webui is the live status page on the metrics listener (`/`): one
// HTML file with its script and styles, embedded in the binary (no CDN, no
// build step). The page polls the JSON API (/api/v1/status) every second and
// draws the virtual and real servers, small graphs of their packet and
// connection rates, VRRP, BGP and connection sync, and the changes it saw
// between polls (checker transitions, failovers, reloads, sessions).
package webui

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Everything is inline and from this origin.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
		_, _ = w.Write(page)
	})
}

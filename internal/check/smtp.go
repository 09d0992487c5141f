package check

import (
	"context"
	"fmt"
	"io"
	"net/textproto"

	"github.com/govs/govs/internal/check/state"
)

type smtpProber struct{ r resolved }

// maxSMTPReply bounds what an SMTP check reads from a server in all.
const maxSMTPReply = 64 << 10

// Probe expects the 220 greeting, sends HELO and wants 250, then QUIT and 221.
func (p *smtpProber) Probe(ctx context.Context) state.Result {
	c, done, err := p.r.session(ctx, "tcp")
	if err != nil {
		return state.Result{Err: err}
	}
	defer done()
	// The whole conversation is a few short lines; a server sending
	// endless ones is cut off.
	tp := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{&budgetReader{r: c, n: maxSMTPReply}, c, c})
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fail("SMTP greeting: %v", unwrapOp(err))
	}
	for _, step := range []struct {
		cmd  string
		want int
	}{{"HELO " + p.r.HELOName, 250}, {"QUIT", 221}} {
		id, err := tp.Cmd("%s", step.cmd)
		if err != nil {
			return fail("SMTP send %s: %v", step.cmd, unwrapOp(err))
		}
		tp.StartResponse(id)
		_, _, err = tp.ReadResponse(step.want)
		tp.EndResponse(id)
		if err != nil {
			return state.Result{Err: fmt.Errorf("SMTP %s: %w", step.cmd, unwrapOp(err))}
		}
	}
	return passed()
}

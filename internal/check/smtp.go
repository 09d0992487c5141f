package check

import (
	"context"
	"fmt"
	"net/textproto"

	"github.com/govs/govs/internal/check/state"
)

type smtpProber struct{ r resolved }

// Probe expects the 220 greeting, sends HELO and wants 250, then QUIT and 221.
func (p *smtpProber) Probe(ctx context.Context) state.Result {
	c, done, err := p.r.session(ctx, "tcp")
	if err != nil {
		return state.Result{Err: err}
	}
	defer done()
	tp := textproto.NewConn(c)
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

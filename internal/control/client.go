package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/govs/govs/internal/status"
)

// Client talks to a daemon's control socket. Its methods may be called from
// several goroutines; requests are sent one at a time.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	dec  *json.Decoder
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	return DialContext(context.Background(), path)
}

// DialContext connects to the control socket at path, giving up when ctx is
// done.
func DialContext(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial control socket: %w", err)
	}
	return &Client{conn: c, dec: json.NewDecoder(bufio.NewReader(c))}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Status asks for the daemon's current state.
func (c *Client) Status(ctx context.Context) (status.Snapshot, error) {
	resp, err := c.do(ctx, OpStatus)
	if err != nil {
		return status.Snapshot{}, err
	}
	if resp.Status == nil {
		return status.Snapshot{}, errors.New("status: daemon sent no status")
	}
	return *resp.Status, nil
}

// Connections asks for the connection table.
func (c *Client) Connections(ctx context.Context) ([]status.Connection, error) {
	resp, err := c.do(ctx, OpConnections)
	if err != nil {
		return nil, err
	}
	return resp.Connections, nil
}

// Reload asks the daemon to reload its configuration. A configuration the
// daemon rejected comes back as a *RemoteError carrying its message.
func (c *Client) Reload(ctx context.Context) error {
	_, err := c.do(ctx, OpReload)
	return err
}

// do sends one request and reads its response. ctx's deadline and
// cancellation apply to both.
// BGPDrain asks the daemon to withdraw (drain) or announce again (undrain)
// its BGP announcements.
// With stopAfter above 0 the daemon stops once that drain period has
// passed.
func (c *Client) BGPDrain(ctx context.Context, drain bool, stopAfter time.Duration) error {
	_, err := c.request(ctx, Request{Op: OpBGPDrain, Drain: drain, StopAfter: stopAfter})
	return err
}

// Weight asks the daemon to set (nil: reset) a real server's weight and
// returns how many real servers changed.
func (c *Client) Weight(ctx context.Context, virtualServer, real string, weight *uint32) (int, error) {
	resp, err := c.request(ctx, Request{Op: OpWeight, VirtualServer: virtualServer, Real: real, Weight: weight})
	if err != nil {
		return 0, err
	}
	return resp.Changed, nil
}

func (c *Client) do(ctx context.Context, op string) (Response, error) {
	return c.request(ctx, Request{Op: op})
}

// request sends req (the version filled in) and reads the response.
func (c *Client) request(ctx context.Context, req Request) (Response, error) {
	op := req.Op
	c.mu.Lock()
	defer c.mu.Unlock()

	deadline, _ := ctx.Deadline()
	if err := c.conn.SetDeadline(deadline); err != nil {
		return Response{}, fmt.Errorf("%s: set deadline: %w", op, err)
	}
	// Cancelling ctx unblocks a pending read or write by moving the
	// deadline into the past.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req.Version = ProtocolVersion
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s: encode request: %w", op, err)
	}
	_, werr := c.conn.Write(append(b, '\n'))
	// Even when the write fails, read: a server that turns clients away
	// (busy) sends its reason and hangs up before reading the request.
	var resp Response
	if err := c.dec.Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, fmt.Errorf("%s: send request: %w", op, ctxErr(ctx, werr))
		}
		return Response{}, fmt.Errorf("%s: read response: %w", op, ctxErr(ctx, err))
	}
	if resp.Version != ProtocolVersion {
		return Response{}, fmt.Errorf("%s: daemon speaks protocol version %d, this client %d", op, resp.Version, ProtocolVersion)
	}
	if !resp.OK {
		msg := resp.Error
		if msg == "" {
			msg = "daemon reported failure without a message"
		}
		return Response{}, &RemoteError{Op: op, Message: msg}
	}
	return resp, nil
}

// ctxErr prefers the context's error over the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The socket deadline is the context's, and may fire a moment before
	// the context's own timer marks it done.
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

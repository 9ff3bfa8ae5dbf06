package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// rpcError is an error response from rtpbridge ({"error":{"code","message"}}).
type rpcError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return e.Code + ": " + e.Message }

// envelope is any message from the server: a response (id + result|error) or an event.
type envelope struct {
	ID     *string         `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

// control is one WebSocket connection to rtpbridge (PROTOCOL.md §2): requests are sent one at
// a time by their caller; a reader goroutine hands responses back and counts events.
type control struct {
	ws      *websocket.Conn
	onEvent func(name string)

	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex
	pending map[string]chan envelope
	nextID  int
	closed  chan struct{}
	readErr error
}

// dialControl connects to url within timeout.
func dialControl(ctx context.Context, url string, timeout time.Duration, onEvent func(string)) (*control, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("websocket dial %s: %w", url, err)
	}
	c := &control{ws: ws, onEvent: onEvent, pending: map[string]chan envelope{}, closed: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *control) readLoop() {
	defer func() {
		c.mu.Lock()
		close(c.closed)
		c.mu.Unlock()
	}()
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		var env envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			continue
		}
		if env.ID == nil {
			if env.Event != "" && c.onEvent != nil {
				c.onEvent(env.Event)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[*env.ID]
		delete(c.pending, *env.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- env
		}
	}
}

// call sends method with params and decodes the result into out (may be nil). It waits at most
// timeout for the response; an error response is returned as *rpcError.
func (c *control) call(ctx context.Context, timeout time.Duration, method string, params, out any) error {
	c.mu.Lock()
	select {
	case <-c.closed:
		err := c.readErr
		c.mu.Unlock()
		return fmt.Errorf("%s: connection closed: %v", method, err)
	default:
	}
	c.nextID++
	id := strconv.Itoa(c.nextID)
	ch := make(chan envelope, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	if params == nil {
		params = struct{}{}
	}
	req, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(timeout))
	err = c.ws.WriteMessage(websocket.TextMessage, req)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: write: %w", method, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case env := <-ch:
		if env.Error != nil {
			return env.Error
		}
		if out != nil {
			if err := json.Unmarshal(env.Result, out); err != nil {
				return fmt.Errorf("%s: bad result %s: %w", method, env.Result, err)
			}
		}
		return nil
	case <-c.closed:
		return fmt.Errorf("%s: connection closed before the response", method)
	case <-t.C:
		return fmt.Errorf("%s: no response within %v", method, timeout)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close sends a close frame and closes the connection.
func (c *control) close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
	select {
	case <-c.closed:
	case <-time.After(2 * time.Second):
	}
}

// errorKey is how an error is counted in the summary: the server's error code and message, or
// the local failure text.
func errorKey(step string, err error) string {
	var re *rpcError
	if errors.As(err, &re) {
		return step + ": " + re.Code + " (" + re.Message + ")"
	}
	return step + ": " + err.Error()
}

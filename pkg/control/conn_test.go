package control

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/session"
)

// harness is a control server on an httptest listener with one connected client.
type harness struct {
	srv     *Server
	metrics *metrics.Metrics
	client  *websocket.Conn
	conn    *conn
}

func newHarness(t *testing.T, normal, critical int) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New()
	mgr := session.NewManager(session.Options{}, log, m)
	t.Cleanup(mgr.Close)
	srv := New(Options{MaxMessageBytes: 1 << 16, EventQueueSize: normal, CriticalQueueSize: critical}, mgr, m, log)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { _ = srv.Close() })
	client, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { client.Close() })
	var c *conn
	deadline := time.Now().Add(5 * time.Second)
	for c == nil {
		if sessions, _ := srv.ws.Sessions(); len(sessions) == 1 {
			c = connOf(sessions[0])
		}
		if time.Now().After(deadline) {
			t.Fatal("server never saw the connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &harness{srv: srv, metrics: m, client: client, conn: c}
}

func (h *harness) read(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	_ = h.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := h.client.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %s", b)
	}
	return m
}

func eventName(m map[string]json.RawMessage) string {
	var s string
	_ = json.Unmarshal(m["event"], &s)
	return s
}

// While a request is in flight, events wait; overflow is counted; after the response come the
// dropped notice, the critical events, then the normal ones, each queue in order.
func TestEventQueuesOrderingAndDrops(t *testing.T) {
	h := newHarness(t, 3, 2)
	c := h.conn

	c.mu.Lock() // what a request in flight holds
	for i := 0; i < 5; i++ {
		c.Emit(protocol.EventDTMF, map[string]int{"n": i}) // 3 fit, 2 dropped
	}
	// Critical: 2 fit their queue; the 3rd overflows into the (full) normal queue and is dropped.
	for i := 0; i < 3; i++ {
		c.Emit(protocol.EventEndpointStateChanged, map[string]int{"n": i})
	}
	c.respondLocked([]byte(`{"id":"x","method":"session.list"}`))
	c.mu.Unlock()

	if m := h.read(t); string(m["id"]) != `"x"` {
		t.Fatalf("first message is not the response: %v", m)
	}
	m := h.read(t)
	if eventName(m) != protocol.EventEventsDropped || string(m["data"]) != `{"count":3}` {
		t.Fatalf("want events.dropped {count:3}, got %s %s", m["event"], m["data"])
	}
	want := []string{
		protocol.EventEndpointStateChanged + `{"n":0}`, protocol.EventEndpointStateChanged + `{"n":1}`,
		protocol.EventDTMF + `{"n":0}`, protocol.EventDTMF + `{"n":1}`, protocol.EventDTMF + `{"n":2}`,
	}
	for _, w := range want {
		m := h.read(t)
		if got := eventName(m) + string(m["data"]); got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
	if got := testutil.ToFloat64(h.metrics.EventsDropped); got != 3 {
		t.Errorf("rtpbridge_events_dropped_total = %v, want 3", got)
	}
}

// A critical event that finds its queue full overflows into the normal queue instead of being lost.
func TestCriticalOverflowsIntoNormal(t *testing.T) {
	h := newHarness(t, 4, 1)
	c := h.conn
	c.mu.Lock()
	c.Emit(protocol.EventRecordingStopped, map[string]int{"n": 0})
	c.Emit(protocol.EventRecordingStopped, map[string]int{"n": 1})
	c.respondLocked([]byte(`{"id":"y","method":"session.list"}`))
	c.mu.Unlock()
	h.read(t) // response
	for i := 0; i < 2; i++ {
		if m := h.read(t); eventName(m) != protocol.EventRecordingStopped {
			t.Fatalf("event %d: %v", i, m)
		}
	}
	if got := testutil.ToFloat64(h.metrics.EventsDropped); got != 0 {
		t.Errorf("dropped %v events, want 0", got)
	}
}

// Events emitted with no request in flight are written by the pump straight away.
func TestEventsWithoutRequest(t *testing.T) {
	h := newHarness(t, 4, 4)
	h.conn.Emit(protocol.EventDTMF, map[string]string{"digit": "5"})
	if m := h.read(t); eventName(m) != protocol.EventDTMF || string(m["data"]) != `{"digit":"5"}` {
		t.Fatalf("got %v", m)
	}
}

// Data that cannot be serialised becomes the documented fallback event.
func TestUnserialisableEvent(t *testing.T) {
	h := newHarness(t, 4, 4)
	h.conn.Emit(protocol.EventStats, map[string]any{"bad": func() {}})
	if m := h.read(t); eventName(m) != "error" || string(m["data"]) != "{}" {
		t.Fatalf("got %v", m)
	}
}

// An idle connection runs no worker: one starts for a request or an event and stops once
// they are handled, and requests sent back to back are still answered in order.
func TestWorkerRunsOnlyWhileThereIsWork(t *testing.T) {
	h := newHarness(t, 8, 8)
	idle := func() bool {
		deadline := time.Now().Add(2 * time.Second)
		for h.conn.working.Load() {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}
	if !idle() {
		t.Fatal("a worker runs on a connection that was sent nothing")
	}
	for i := range 20 {
		req := `{"id":"r` + string(rune('a'+i)) + `","method":"session.list","params":{}}`
		if err := h.client.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		var id string
		_ = json.Unmarshal(h.read(t)["id"], &id)
		if want := "r" + string(rune('a'+i)); id != want {
			t.Fatalf("response %d has id %q, want %q", i, id, want)
		}
	}
	if !idle() {
		t.Fatal("the worker did not stop after the requests were answered")
	}
	h.conn.Emit("test.event", map[string]int{"n": 1})
	if got := eventName(h.read(t)); got != "test.event" {
		t.Fatalf("event %q, want test.event", got)
	}
	if !idle() {
		t.Fatal("the worker did not stop after writing the event")
	}
}

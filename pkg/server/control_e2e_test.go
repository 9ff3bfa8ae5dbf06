package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

const wait = 5 * time.Second

func TestSessionLifecycle(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)

	id := c.CreateSession()
	if _, err := uuid.Parse(id); err != nil || strings.ToLower(id) != id {
		t.Fatalf("session_id %q is not a lowercase UUID", id)
	}

	var info map[string]json.RawMessage
	c.MustCall("session.info", nil, &info)
	for _, key := range []string{"session_id", "state", "created_at", "endpoints", "recordings", "vad_active"} {
		if _, ok := info[key]; !ok {
			t.Errorf("session.info lacks %q: %v", key, info)
		}
	}
	if string(info["state"]) != `"active"` || string(info["endpoints"]) != "[]" {
		t.Errorf("session.info state/endpoints = %s/%s", info["state"], info["endpoints"])
	}
	var created string
	_ = json.Unmarshal(info["created_at"], &created)
	if ts, err := time.Parse(time.RFC3339Nano, created); err != nil || !strings.HasSuffix(created, "Z") || time.Since(ts) > time.Minute {
		t.Errorf("created_at %q is not a recent RFC 3339 UTC time", created)
	}

	var list struct {
		Sessions []struct {
			SessionID     string `json:"session_id"`
			State         string `json:"state"`
			EndpointCount int    `json:"endpoint_count"`
			CreatedAt     string `json:"created_at"`
		} `json:"sessions"`
	}
	c.MustCall("session.list", nil, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].SessionID != id || list.Sessions[0].State != "active" || list.Sessions[0].CreatedAt != created {
		t.Fatalf("session.list = %+v", list)
	}

	c.ExpectError("session.create", nil, protocol.CodeSessionAlreadyBound)
	c.MustCall("session.destroy", nil, nil)
	testserver.Eventually(t, wait, "session to vanish", func() bool { return srv.Manager().Count() == 0 })
	c.ExpectError("session.info", nil, protocol.CodeNoSession)
	c.ExpectError("session.destroy", nil, protocol.CodeNoSession)
	c.MustCall("session.list", nil, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("session.list after destroy = %+v", list)
	}
	// The connection is free again.
	c.CreateSession()

	if got := srv.MetricValue(t, "rtpbridge_sessions_total"); got != 2 {
		t.Errorf("rtpbridge_sessions_total = %v, want 2", got)
	}
	if got := srv.MetricValue(t, "rtpbridge_sessions_active"); got != 1 {
		t.Errorf("rtpbridge_sessions_active = %v, want 1", got)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	long := strings.Repeat("é", 600) // 1200 bytes, cut on a rune boundary
	cases := []struct {
		name, frame, code, id string
	}{
		{"not json", `{"id":"a",`, protocol.CodeParseError, ""},
		{"array", `[1,2]`, protocol.CodeParseError, ""},
		{"id number", `{"id":7,"method":"session.list"}`, protocol.CodeParseError, ""},
		{"id null", `{"id":null,"method":"session.list"}`, protocol.CodeParseError, ""},
		{"missing method", `{"id":"m1"}`, protocol.CodeParseError, "m1"},
		{"method number", `{"id":"m2","method":5}`, protocol.CodeParseError, "m2"},
		{"long id", fmt.Sprintf(`{"id":%q,"method":"session.list"}`, long), protocol.CodeInvalidParams, strings.Repeat("é", 512)},
		{"long id bad method", fmt.Sprintf(`{"id":%q}`, long), protocol.CodeParseError, ""},
		{"empty id", `{"id":"","method":"session.list"}`, protocol.CodeInvalidRequest, ""},
		{"unknown method", `{"id":"u","method":"session.frobnicate"}`, protocol.CodeUnknownMethod, "u"},
		{"params array", `{"id":"p","method":"session.list","params":[1]}`, protocol.CodeInvalidParams, "p"},
		// Session-bound methods check the binding before their parameters (issue 11).
		{"params string unbound", `{"id":"p2","method":"session.info","params":"x"}`, protocol.CodeNoSession, "p2"},
		{"create_offer no type unbound", `{"id":"c1","method":"endpoint.create_offer","params":{}}`, protocol.CodeNoSession, "c1"},
		{"accept_answer bad uuid unbound", `{"id":"c2","method":"endpoint.accept_answer","params":{"endpoint_id":"nope"}}`, protocol.CodeNoSession, "c2"},
		{"destroy params array unbound", `{"id":"d2","method":"session.destroy","params":[1]}`, protocol.CodeNoSession, "d2"},
		{"attach no params", `{"id":"a1","method":"session.attach"}`, protocol.CodeInvalidParams, "a1"},
		{"attach bad uuid", `{"id":"a2","method":"session.attach","params":{"session_id":"nope"}}`, protocol.CodeInvalidParams, "a2"},
		{"attach wrong type", `{"id":"a3","method":"session.attach","params":{"session_id":12}}`, protocol.CodeInvalidParams, "a3"},
		{"attach unknown", `{"id":"a4","method":"session.attach","params":{"session_id":"` + uuid.NewString() + `"}}`, protocol.CodeSessionNotFound, "a4"},
		{"info unbound", `{"id":"i","method":"session.info"}`, protocol.CodeNoSession, "i"},
		{"destroy unbound", `{"id":"d","method":"session.destroy","params":null}`, protocol.CodeNoSession, "d"},
	}
	for _, tc := range cases {
		c.SendRaw(tc.frame)
		m, _ := c.Response(wait)
		if m.Error == nil || m.Error.Code != tc.code || *m.ID != tc.id {
			t.Errorf("%s: got %s, want code %s id %q", tc.name, m.Raw, tc.code, tc.id)
		}
		if m.Result != nil {
			t.Errorf("%s: response carries both result and error: %s", tc.name, m.Raw)
		}
	}
	c.SendRaw(`{"id":"u2","method":"nope"}`)
	if m, _ := c.Response(wait); m.Error == nil || m.Error.Message != "Unknown method: nope" {
		t.Errorf("unknown method message: %s", m.Raw)
	}
	// Unknown fields are ignored, null params mean {}, binary frames are ignored.
	if err := c.Conn().WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.SendRaw(`{"id":"ok","method":"session.list","params":null,"extra":true}`)
	m, _ := c.Response(wait)
	if m.Error != nil || string(m.Result) != `{"sessions":[]}` {
		t.Errorf("session.list with extras: %s", m.Raw)
	}
	// The connection survived all of it.
	c.CreateSession()
	// Once bound, the same requests get their parameter errors.
	for _, tc := range []struct{ name, frame, id string }{
		{"params string", `{"id":"b1","method":"session.info","params":"x"}`, "b1"},
		{"create_offer no type", `{"id":"b2","method":"endpoint.create_offer","params":{}}`, "b2"},
		{"accept_answer bad uuid", `{"id":"b3","method":"endpoint.accept_answer","params":{"endpoint_id":"nope"}}`, "b3"},
		{"destroy params array", `{"id":"b4","method":"session.destroy","params":[1]}`, "b4"},
	} {
		c.SendRaw(tc.frame)
		m, _ := c.Response(wait)
		if m.Error == nil || m.Error.Code != protocol.CodeInvalidParams || *m.ID != tc.id {
			t.Errorf("bound, %s: got %s, want code %s id %q", tc.name, m.Raw, protocol.CodeInvalidParams, tc.id)
		}
	}
}

func TestOrphanAttachAndTimeout(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.DisconnectTimeoutSecs = 1 }, server.Tuning{})
	c1 := testserver.Dial(t, srv)
	id := c1.CreateSession()

	// A clean close gets the session.orphaned notice before the close frame.
	if err := c1.Conn().WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	ev := c1.WaitEvent(protocol.EventSessionOrphaned, wait)
	if string(ev.Data) != `{"timeout_remaining_ms":1000}` {
		t.Errorf("session.orphaned data = %s", ev.Data)
	}
	testserver.Eventually(t, wait, "orphaned state", func() bool {
		_, body := srv.Get(t, "/sessions/"+id)
		return strings.Contains(string(body), `"state": "orphaned"`)
	})

	c2 := testserver.Dial(t, srv)
	c2.MustCall("session.attach", map[string]any{"session_id": strings.ToUpper(id)}, nil)
	var info struct{ State string }
	c2.MustCall("session.info", nil, &info)
	if info.State != "active" {
		t.Fatalf("state after attach = %q", info.State)
	}
	c3 := testserver.Dial(t, srv)
	c3.ExpectError("session.attach", map[string]any{"session_id": id}, protocol.CodeSessionNotOrphaned)
	c2.ExpectError("session.attach", map[string]any{"session_id": id}, protocol.CodeSessionAlreadyBound)

	// Dropping the TCP connection without a close frame orphans too; the timer then destroys it.
	_ = c2.Conn().UnderlyingConn().Close()
	testserver.Eventually(t, wait, "orphan to be destroyed", func() bool { return srv.Manager().Count() == 0 })
	c3.ExpectError("session.attach", map[string]any{"session_id": id}, protocol.CodeSessionNotFound)
}

func TestIdleAndEmptyTimeouts(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		srv := testserver.Start(t, func(c *config.Config) { c.SessionIdleTimeoutSecs = 1 }, server.Tuning{})
		c := testserver.Dial(t, srv)
		id := c.CreateSession()
		start := time.Now()
		ev := c.WaitEvent(protocol.EventSessionIdleTimeout, wait)
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("idle timeout after %v, want ≥ 1 s", d)
		}
		if string(ev.Data) != fmt.Sprintf(`{"idle_timeout_secs":1,"session_id":%q}`, id) {
			t.Errorf("idle event data = %s", ev.Data)
		}
		testserver.Eventually(t, wait, "session end", func() bool { return srv.Manager().Count() == 0 })
		c.ExpectError("session.info", nil, protocol.CodeNoSession) // D20: unbound
		c.CreateSession()
	})
	t.Run("activity defers idle", func(t *testing.T) {
		srv := testserver.Start(t, func(c *config.Config) { c.SessionIdleTimeoutSecs = 1 }, server.Tuning{})
		c := testserver.Dial(t, srv)
		c.CreateSession()
		for i := 0; i < 6; i++ {
			time.Sleep(300 * time.Millisecond)
			c.MustCall("session.info", nil, nil)
		}
	})
	t.Run("empty", func(t *testing.T) {
		srv := testserver.Start(t, func(c *config.Config) { c.EmptySessionTimeoutSecs = 1 }, server.Tuning{})
		c := testserver.Dial(t, srv)
		id := c.CreateSession()
		ev := c.WaitEvent(protocol.EventSessionEmptyTimeout, wait)
		if string(ev.Data) != fmt.Sprintf(`{"empty_timeout_secs":1,"session_id":%q}`, id) {
			t.Errorf("empty event data = %s", ev.Data)
		}
		testserver.Eventually(t, wait, "session end", func() bool { return srv.Manager().Count() == 0 })
		c.ExpectError("session.info", nil, protocol.CodeNoSession)
	})
}

func TestMaxSessions(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxSessions = 2 }, server.Tuning{})
	for i := 0; i < 2; i++ {
		testserver.Dial(t, srv).CreateSession()
	}
	c := testserver.Dial(t, srv)
	c.ExpectError("session.create", nil, protocol.CodeMaxSessionsReached)
}

func TestMaxConnections(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxConnections = 2 }, server.Tuning{})
	testserver.Dial(t, srv)
	testserver.Dial(t, srv)
	conn, err := net.DialTimeout("tcp", srv.Addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || status != "HTTP/1.1 503 Service Unavailable\r\n" {
		t.Fatalf("over-limit connection got %q, %v", status, err)
	}
}

func TestOversizedFrameDropsConnection(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.WSMaxMessageSizeKB = 1 }, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	c.SendRaw(`{"id":"big","method":"session.list","params":{"pad":"` + strings.Repeat("x", 2000) + `"}}`)
	if _, closed := c.Closed(wait); !closed {
		t.Fatal("connection survived an oversized frame")
	}
	// The session is orphaned, not destroyed.
	testserver.Eventually(t, wait, "orphaned", func() bool {
		l := srv.Manager().List()
		return len(l) == 1 && l[0].State == "orphaned"
	})
	// Other connections are unaffected.
	testserver.Dial(t, srv).CreateSession()
}

func TestPingsAndDeadPeers(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.WSPingIntervalSecs = 1 }, server.Tuning{})
	var pings atomic.Int32
	// A live client answers pings (gorilla does so by default) and stays connected.
	live := testserver.Dial(t, srv)
	def := live.Conn().PingHandler()
	live.Conn().SetPingHandler(func(data string) error { pings.Add(1); return def(data) })
	live.CreateSession()

	// A dead client reads but never answers pings.
	dead := testserver.Dial(t, srv)
	dead.Conn().SetPingHandler(func(string) error { return nil })
	dead.CreateSession()
	if _, closed := dead.Closed(6 * time.Second); !closed {
		t.Fatal("server did not drop a peer that ignores pings")
	}
	// The dead peer can be dropped after two intervals, just as the live client's second ping
	// is due: wait for it (bounded) rather than race it.
	testserver.Eventually(t, 5*time.Second, "a second ping to the live client", func() bool { return pings.Load() >= 2 })
	live.MustCall("session.info", nil, nil)
	testserver.Eventually(t, wait, "dead peer's session orphaned", func() bool {
		orphaned := 0
		for _, s := range srv.Manager().List() {
			if s.State == "orphaned" {
				orphaned++
			}
		}
		return orphaned == 1
	})
}

// stallGate blocks session loops on a chosen method until released.
type stallGate struct {
	method  string
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newStallGate(method string) *stallGate {
	return &stallGate{method: method, release: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (g *stallGate) hook(method string) {
	if method == g.method {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.release
	}
}

func (g *stallGate) open() { g.once.Do(func() { close(g.release) }) }

func TestSessionUnresponsive(t *testing.T) {
	gate := newStallGate("stats.unsubscribe")
	srv := testserver.Start(t, nil, server.Tuning{CommandTimeout: 300 * time.Millisecond, BeforeCommand: gate.hook})
	defer gate.open()
	c := testserver.Dial(t, srv)
	c.CreateSession()
	start := time.Now()
	c.ExpectError("stats.unsubscribe", nil, protocol.CodeSessionUnresponsive)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SESSION_UNRESPONSIVE after %v", d)
	}
	// Other sessions are unaffected.
	other := testserver.Dial(t, srv)
	other.CreateSession()
	other.MustCall("session.list", nil, nil)
	gate.open()
	// The abandoned command was never applied late; the session works again.
	c.MustCall("stats.unsubscribe", nil, nil)
}

// A session that does not answer session.info in time is reported gone (§3), and over HTTP
// as not found (§24).
func TestSessionInfoTimeoutIsGone(t *testing.T) {
	gate := newStallGate("session.info")
	srv := testserver.Start(t, nil, server.Tuning{CommandTimeout: 300 * time.Millisecond, BeforeCommand: gate.hook})
	defer gate.open()
	c := testserver.Dial(t, srv)
	id := c.CreateSession()
	c.ExpectError("session.info", nil, protocol.CodeSessionGone)
	if status, body := srv.Get(t, "/sessions/"+id); status != 404 || string(body) != `{"error":"session not found"}` {
		t.Errorf("GET /sessions/{stalled} = %d %s", status, body)
	}
	gate.open()
	c.MustCall("session.info", nil, nil)
}

func TestSessionBusy(t *testing.T) {
	gate := newStallGate("session.info")
	srv := testserver.Start(t, func(c *config.Config) { c.DisconnectTimeoutSecs = 30 },
		server.Tuning{CommandTimeout: 3 * time.Second, BeforeCommand: gate.hook})
	defer gate.open()
	c := testserver.Dial(t, srv)
	id := c.CreateSession()
	_ = c.Conn().UnderlyingConn().Close()
	testserver.Eventually(t, wait, "orphaned", func() bool { return srv.Manager().List()[0].State == "orphaned" })

	// Stall the loop on one query, then fill its 64-slot queue with more queries.
	var wg sync.WaitGroup
	for i := 0; i < 70; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not srv.Get: t.Fatal must not run outside the test goroutine.
			if resp, err := http.Get("http://" + srv.Addr + "/sessions/" + id); err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-gate.entered
	attacher := testserver.Dial(t, srv)
	testserver.Eventually(t, wait, "SESSION_BUSY", func() bool {
		m := attacher.Call("session.attach", map[string]any{"session_id": id})
		return m.Error != nil && m.Error.Code == protocol.CodeSessionBusy
	})
	gate.open()
	wg.Wait()
	// Once drained, the session is still orphaned and can be attached. Queries whose callers
	// timed out stay queued (abandoned) until the loop skips them, so the queue may still be
	// full for a moment after the last HTTP answer: only SESSION_BUSY may precede success.
	testserver.Eventually(t, wait, "attach after drain", func() bool {
		m := attacher.Call("session.attach", map[string]any{"session_id": id})
		if m.Error != nil && m.Error.Code != protocol.CodeSessionBusy {
			t.Fatalf("session.attach after drain: %s", m.Raw)
		}
		return m.Error == nil
	})
}

func TestRequestFloodOtherConnectionsServed(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	flood := testserver.Dial(t, srv)
	flood.CreateSession()
	const n = 2000
	go func() {
		for i := 0; i < n; i++ {
			if err := flood.Conn().WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":"f%d","method":"session.info"}`, i))); err != nil {
				return
			}
		}
	}()
	calm := testserver.Dial(t, srv)
	calm.CreateSession()
	for i := 0; i < 20; i++ {
		calm.MustCall("session.info", nil, nil)
	}
	// Every flooded request is answered, in order.
	for i := 0; i < n; i++ {
		m, _ := flood.Response(15 * time.Second)
		if *m.ID != fmt.Sprintf("f%d", i) || m.Error != nil {
			t.Fatalf("flood response %d: %s", i, m.Raw)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testserver.Dial(t, srv)
			c.CreateSession()
			for j := 0; j < 10; j++ {
				c.MustCall("session.info", nil, nil)
			}
			c.MustCall("session.destroy", nil, nil)
		}()
	}
	wg.Wait()
	testserver.Eventually(t, wait, "all sessions gone", func() bool { return srv.Manager().Count() == 0 })
}

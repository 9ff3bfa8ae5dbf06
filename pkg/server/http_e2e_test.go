package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

func TestHTTPRoutes(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	id := c.CreateSession()

	cases := []struct {
		method, path string
		status       int
		body         string // exact, or "" to skip
	}{
		{"GET", "/health", 200, `{"status":"ok"}`},
		{"GET", "/ready", 200, `{"status":"ready"}`},
		{"GET", "/sessions/not-a-uuid", 400, `{"error":"invalid session ID"}`},
		{"GET", "/sessions/" + uuid.NewString(), 404, `{"error":"session not found"}`},
		{"GET", "/nope", 404, `{"error":"not found"}`},
		{"GET", "/recordings/missing.pcap", 404, `{"error":"recording not found"}`},
		{"POST", "/health", 405, `{"error":"method not allowed"}`},
		{"HEAD", "/ready", 405, ""},
		{"DELETE", "/sessions", 405, `{"error":"method not allowed"}`},
		{"PUT", "/metrics", 405, `{"error":"method not allowed"}`},
		{"POST", "/nope", 404, `{"error":"not found"}`},
	}
	for _, tc := range cases {
		status, body := srv.Do(t, tc.method, tc.path)
		if status != tc.status || (tc.body != "" && string(body) != tc.body) {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, status, body, tc.status, tc.body)
		}
	}

	resp, err := http.Get("http://" + srv.Addr + "/sessions")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if resp.Header.Get("Content-Length") == "" || !resp.Close {
		t.Errorf("missing Content-Length or Connection: close: %v", resp.Header)
	}
	var list []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 || list[0]["session_id"] != id || list[0]["endpoint_count"] != 0.0 {
		t.Fatalf("GET /sessions = %s (%v)", buf.Bytes(), err)
	}
	if !strings.Contains(buf.String(), "\n  ") {
		t.Errorf("GET /sessions is not pretty-printed: %s", buf.Bytes())
	}

	status, body := srv.Get(t, "/sessions/"+strings.ToUpper(id))
	var info map[string]any
	if status != 200 || json.Unmarshal(body, &info) != nil || info["session_id"] != id || info["state"] != "active" {
		t.Fatalf("GET /sessions/{id} = %d %s", status, body)
	}
	for _, key := range []string{"created_at", "endpoints", "recordings", "vad_active"} {
		if _, ok := info[key]; !ok {
			t.Errorf("GET /sessions/{id} lacks %s", key)
		}
	}

	c.MustCall("session.destroy", nil, nil)
	testserver.Eventually(t, wait, "empty list", func() bool {
		_, body := srv.Get(t, "/sessions")
		return string(body) == "[]"
	})
}

func TestWebSocketOnAnyPath(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr+"/any/path?x=1", nil)
	if err != nil {
		t.Fatalf("upgrade on /any/path: %v", err)
	}
	resp.Body.Close()
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"id":"1","method":"session.list"}`)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != `{"id":"1","result":{"sessions":[]}}` {
		t.Fatalf("response %s, %v", msg, err)
	}
}

// rtpbridgeMetrics are PROTOCOL.md §25's samples with their types and HELP texts.
var rtpbridgeMetrics = []struct{ sample, typ, help string }{
	{"rtpbridge_sessions_total", "counter", "Total sessions created."},
	{"rtpbridge_sessions_active", "gauge", "Currently active sessions."},
	{"rtpbridge_endpoints_total", "counter", "Total endpoints created."},
	{"rtpbridge_endpoints_active", "gauge", "Currently active endpoints."},
	{"rtpbridge_packets_routed_total", "counter", "Total packets routed between endpoints."},
	{"rtpbridge_packets_recorded_total", "counter", "Total packets recorded to PCAP."},
	{"rtpbridge_recordings_active", "gauge", "Currently active recordings."},
	{"rtpbridge_srtp_errors_total", "counter", "SRTP authentication or replay errors."},
	{"rtpbridge_dtmf_events_total", "counter", "DTMF events detected."},
	{"rtpbridge_transcode_errors_total", "counter", "Transcode errors (decode or encode failures)."},
	{"rtpbridge_events_dropped_total", "counter", "Events dropped due to channel backpressure."},
}

func TestMetricsEndpoint(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	testserver.Dial(t, srv).CreateSession()

	resp, err := http.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	text := buf.String()
	for _, m := range rtpbridgeMetrics {
		for _, want := range []string{
			"# HELP " + m.sample + " " + m.help + "\n",
			"# TYPE " + m.sample + " " + m.typ + "\n",
			"\n" + m.sample + " ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	}
	if v := srv.MetricValue(t, "rtpbridge_sessions_active"); v != 1 {
		t.Errorf("rtpbridge_sessions_active = %v", v)
	}

	// OpenMetrics on request, with counters declared under their base name.
	req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("OpenMetrics Content-Type = %q", ct)
	}
	om := buf.String()
	if !strings.Contains(om, "# TYPE rtpbridge_sessions counter\n") || !strings.Contains(om, "\nrtpbridge_sessions_total 1") || !strings.HasSuffix(om, "# EOF\n") {
		t.Errorf("OpenMetrics body malformed:\n%s", om)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool (Debian package prometheus) is not installed; `make test` installs it")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestDrain(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.DisconnectTimeoutSecs = 30 }, server.Tuning{})
	active := testserver.Dial(t, srv)
	active.CreateSession()
	orphanOwner := testserver.Dial(t, srv)
	orphanID := orphanOwner.CreateSession()
	_ = orphanOwner.Conn().UnderlyingConn().Close()
	testserver.Eventually(t, wait, "orphan", func() bool {
		for _, s := range srv.Manager().List() {
			if s.SessionID == orphanID && s.State == "orphaned" {
				return true
			}
		}
		return false
	})

	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(t.Context()) }()
	testserver.Eventually(t, wait, "draining", srv.Draining)

	if status, body := srv.Get(t, "/ready"); status != 503 || string(body) != `{"status":"draining"}` {
		t.Errorf("/ready while draining = %d %s", status, body)
	}
	if status, _ := srv.Get(t, "/health"); status != 200 {
		t.Errorf("/health while draining = %d", status)
	}
	// New connections are accepted, but cannot create sessions.
	late := testserver.Dial(t, srv)
	late.ExpectError("session.create", nil, protocol.CodeShuttingDown)
	// SHUTTING_DOWN is checked before anything else, even on a bound connection.
	active.ExpectError("session.create", nil, protocol.CodeShuttingDown)
	active.MustCall("session.info", nil, nil)
	// The orphan is still attachable.
	late.MustCall("session.attach", map[string]any{"session_id": orphanID}, nil)

	select {
	case err := <-drained:
		t.Fatalf("drain finished with sessions left: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	active.MustCall("session.destroy", nil, nil)
	late.MustCall("session.destroy", nil, nil)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("drain did not finish after the last session ended")
	}
}

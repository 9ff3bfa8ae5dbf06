package server_test

import (
	"encoding/json"
	"math"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
	"github.com/rtpbridge/rtpbridge/pkg/wsaudio"
)

// End-to-end tests of WebSocket audio endpoints (PROTOCOL.md §30): a Go client on the audio
// socket plays the voice bot, a real UDP peer the phone.

// wsEndpoint creates a WebSocket audio endpoint and returns its id and connect token.
func wsEndpoint(t *testing.T, c *testserver.Client, params map[string]any) (id, token string) {
	t.Helper()
	var res struct {
		EndpointID   string `json:"endpoint_id"`
		ConnectToken string `json:"connect_token"`
	}
	c.MustCall("endpoint.create_websocket", params, &res)
	if _, err := uuid.Parse(res.ConnectToken); err != nil || res.EndpointID == "" {
		t.Fatalf("create_websocket result %+v", res)
	}
	return res.EndpointID, res.ConnectToken
}

// connectAudio opens the audio socket and waits for the state change and the connected event.
func connectAudio(t *testing.T, srv *testserver.Server, c *testserver.Client, id, token string) *testserver.AudioClient {
	t.Helper()
	before := time.Now()
	a, err := testserver.DialAudio(t, srv, token, true)
	if err != nil {
		t.Fatalf("dial audio socket: %v", err)
	}
	st := c.WaitEvent(protocol.EventEndpointStateChanged, wait)
	var sc stateChange
	decodeData(t, st.Data, &sc)
	if sc.EndpointID != id || sc.OldState != "connecting" || sc.NewState != "connected" {
		t.Fatalf("state_changed %s", st.Data)
	}
	ev := c.WaitEvent(protocol.EventWSConnected, wait)
	var conn struct {
		EndpointID         string `json:"endpoint_id"`
		ConnectedAtEpochMs int64  `json:"connected_at_epoch_ms"`
	}
	decodeData(t, ev.Data, &conn)
	if conn.EndpointID != id || conn.ConnectedAtEpochMs < before.UnixMilli()-1000 || conn.ConnectedAtEpochMs > time.Now().UnixMilli() {
		t.Fatalf("endpoint.ws.connected %s", ev.Data)
	}
	return a
}

// decodeData decodes an event's data.
func decodeData(t *testing.T, raw json.RawMessage, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("event data %s: %v", raw, err)
	}
}

// stateChange is endpoint.state_changed's data.
type stateChange struct {
	EndpointID string `json:"endpoint_id"`
	OldState   string `json:"old_state"`
	NewState   string `json:"new_state"`
}

// endpointEvent is the data of events that only name an endpoint.
type endpointEvent struct {
	EndpointID string `json:"endpoint_id"`
}

// pcmuTone is a 1 kHz tone as 20 ms PCMU payloads, encoded by the ffmpeg CLI.
func pcmuTone(t *testing.T, frames int) [][]byte {
	t.Helper()
	audiotest.RequireFFmpeg(t)
	return audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 160*frames, 0.3, 1000))
}

// arrivalGaps returns the intervals between consecutive arrival times.
func arrivalGaps(at []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i].Sub(at[i-1]))
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// checkPaced fails unless arrivals are paced at 20 ms: the median interval is 20 ms, nine in
// ten intervals lie within 10-30 ms, none exceeds maxGap, and the whole run takes real time (a
// burst would have a median near zero and a short span). Arrival times carry this shared
// machine's scheduling noise; the RTP timestamps, checked by the callers, are the server's own
// timeline.
func checkPaced(t *testing.T, at []time.Time, maxGap time.Duration) {
	t.Helper()
	gaps := arrivalGaps(at)
	var worst time.Duration
	regular := 0
	for _, g := range gaps {
		worst = max(worst, g)
		if g >= 10*time.Millisecond && g <= 30*time.Millisecond {
			regular++
		}
	}
	t.Logf("%d frames: median interval %v, %d of %d within 10-30 ms, largest %v, span %v",
		len(at), median(gaps), regular, len(gaps), worst, at[len(at)-1].Sub(at[0]))
	if m := median(gaps); m < 17*time.Millisecond || m > 23*time.Millisecond {
		t.Errorf("median interval %v, want 20 ms", m)
	}
	if regular < len(gaps)*9/10 {
		t.Errorf("only %d of %d intervals within 10-30 ms", regular, len(gaps))
	}
	if worst > maxGap {
		t.Errorf("largest interval %v > %v", worst, maxGap)
	}
	if span, want := at[len(at)-1].Sub(at[0]), time.Duration(len(at)-1)*20*time.Millisecond; span < want-60*time.Millisecond {
		t.Errorf("%d frames arrived within %v: a burst, not paced (want about %v)", len(at), span, want)
	}
}

// TestWSAudioInboundPaced: a bot streams 2 s of a 16 kHz tone ten times faster than real time,
// in odd-sized messages; the phone receives it paced at 20 ms, continuous, at the right
// frequency.
func TestWSAudioInboundPaced(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	phone := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	id, token := wsEndpoint(t, c, map[string]any{"sample_rate": 16000})
	bot := connectAudio(t, srv, c, id, token)

	const seconds = 2
	tone := audiotest.Tone(16000, 16000*seconds, 0.3, 1000)
	raw := make([]byte, 0, 2*len(tone))
	for _, v := range tone {
		raw = append(raw, byte(v), byte(uint16(v)>>8))
	}
	// 1283-byte messages (about 40 ms, odd: every other message splits a sample), 10× real time.
	const chunk = 1283
	start := time.Now()
	for off := 0; off < len(raw); off += chunk {
		if err := bot.SendBytes(raw[off:min(off+chunk, len(raw))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Millisecond)
	}
	if d := time.Since(start); d > seconds*time.Second/4 {
		t.Logf("sending took %v (machine busy)", d)
	}

	pkts := phone.peer.Collect(seconds*50, seconds*time.Second+3*time.Second)
	if len(pkts) < seconds*50 {
		t.Fatalf("phone received %d packets, want %d", len(pkts), seconds*50)
	}
	var at []time.Time
	var payloads [][]byte
	for i, p := range pkts {
		at = append(at, p.At)
		payloads = append(payloads, p.Payload)
		if i > 0 {
			prev := pkts[i-1].Header
			if p.Header.SSRC != prev.SSRC || p.Header.SequenceNumber != prev.SequenceNumber+1 || p.Header.Timestamp != prev.Timestamp+160 {
				t.Fatalf("packet %d breaks the stream: seq %d→%d ts %d→%d", i, prev.SequenceNumber, p.Header.SequenceNumber, prev.Timestamp, p.Header.Timestamp)
			}
		}
	}
	checkPaced(t, at, maxJitter())
	pcm := audiotest.DecodeULaw(concat(payloads))
	steady := pcm[1600 : len(pcm)-800]
	if f := audiotest.DominantFrequency(steady, 8000); math.Abs(f-1000) > 2 {
		t.Errorf("dominant frequency %.1f Hz, want 1000", f)
	}
	if snr, err := audiotest.SNR(steady, 8000, 1000); err != nil || snr < 25 {
		t.Errorf("SNR %.1f dB (%v), want ≥ 25", snr, err)
	}
	checkNoDropout(t, steady, 160)
	// Nothing more: the buffer ran dry and the leg went quiet.
	phone.peer.Drain()
	phone.peer.ExpectNone(200 * time.Millisecond)
}

func concat(bs [][]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// checkNoDropout fails if any frame of pcm is much quieter than the signal as a whole.
func checkNoDropout(t *testing.T, pcm []int16, frame int) {
	t.Helper()
	rms := func(x []int16) float64 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(x)))
	}
	all := rms(pcm)
	for i, f := range audiotest.Frames(pcm, frame) {
		if r := rms(f); r < all/3 {
			t.Errorf("frame %d is a dropout: RMS %.0f against %.0f overall", i, r, all)
			return
		}
	}
}

// TestWSAudioOutboundRates: the phone's tone reaches the bot at 8, 16 and 48 kHz, one message
// per 20 ms (or per flush_ms), at the right frequency and without gaps.
func TestWSAudioOutboundRates(t *testing.T) {
	payloads := pcmuTone(t, 75)
	for _, tc := range []struct {
		name         string
		rate, flush  int
		msgSamples   int
		messageEvery time.Duration
	}{
		{"8k", 8000, 0, 160, 20 * time.Millisecond},
		{"16k", 16000, 0, 320, 20 * time.Millisecond},
		{"48k", 48000, 0, 960, 20 * time.Millisecond},
		{"16k-flush100", 16000, 100, 1600, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			phone := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
			params := map[string]any{"sample_rate": tc.rate, "direction": "recvonly"}
			if tc.flush > 0 {
				params["flush_ms"] = tc.flush
			}
			id, token := wsEndpoint(t, c, params)
			bot := connectAudio(t, srv, c, id, token)

			phone.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 100, Timestamp: 1000, SSRC: 0x1234}, len(payloads), 160, false,
				func(i int) []byte { return payloads[i] })
			want := len(payloads) * tc.rate / 50
			msgs := bot.Gather(want-2*tc.msgSamples, 3*time.Second)
			var pcm []int16
			var at []time.Time
			for i, m := range msgs {
				if len(m.PCM) != tc.msgSamples {
					t.Fatalf("message %d has %d samples, want %d", i, len(m.PCM), tc.msgSamples)
				}
				pcm = append(pcm, m.PCM...)
				at = append(at, m.At)
			}
			if len(pcm) < want-2*tc.msgSamples {
				t.Fatalf("bot received %d samples, want about %d", len(pcm), want)
			}
			gaps := arrivalGaps(at)
			for i, g := range gaps {
				if g > tc.messageEvery+60*time.Millisecond {
					t.Errorf("message %d came %v after the previous one", i+1, g)
				}
			}
			steady := pcm[tc.rate/10 : len(pcm)-tc.rate/20]
			if f := audiotest.DominantFrequency(steady, tc.rate); math.Abs(f-1000) > 2 {
				t.Errorf("dominant frequency %.1f Hz, want 1000", f)
			}
			if snr, err := audiotest.SNR(steady, tc.rate, 1000); err != nil || snr < 25 {
				t.Errorf("SNR %.1f dB (%v), want ≥ 25", snr, err)
			}
			checkNoDropout(t, steady, tc.rate/50)

			info := c.SessionInfo()
			found := false
			for _, e := range info.Endpoints {
				if e.EndpointID == id {
					found = true
					if e.EndpointType != "websocket" || e.State != "connected" || e.Codec == nil || *e.Codec != "L16/"+strconv.Itoa(tc.rate) {
						t.Errorf("session.info entry %+v", e)
					}
				}
			}
			if !found {
				t.Errorf("endpoint missing from session.info")
			}
		})
	}
}

// TestWSAudioClearAndMark: clear drops the buffered audio at once and playout stops within
// 40 ms; a mark comes back once the audio before it has played.
func TestWSAudioClearAndMark(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	phone := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	id, token := wsEndpoint(t, c, nil) // 8 kHz
	bot := connectAudio(t, srv, c, id, token)

	// A mark with nothing buffered is answered at once.
	if err := bot.SendText(`{"type":"mark","name":"empty"}`); err != nil {
		t.Fatal(err)
	}
	if m, ok := bot.WaitText("mark", wait); !ok || m.Name != "empty" {
		t.Fatalf("mark on an empty buffer: %+v %v", m, ok)
	}

	// 5 s of audio at once, then a mark behind it.
	if err := bot.SendPCM(audiotest.Tone(8000, 8000*5, 0.3, 700)); err != nil {
		t.Fatal(err)
	}
	if err := bot.SendText(`{"type":"mark","name":"after-5s"}`); err != nil {
		t.Fatal(err)
	}
	if got := phone.peer.Collect(15, 2*time.Second); len(got) < 15 {
		t.Fatalf("playout did not start: %d packets", len(got))
	}
	if m, ok := bot.WaitText("mark", 300*time.Millisecond); ok {
		t.Fatalf("mark %q came back while its audio was still buffered", m.Name)
	}
	// Barge-in.
	cleared := time.Now()
	if err := bot.SendText(`{"type":"clear"}`); err != nil {
		t.Fatal(err)
	}
	m, ok := bot.WaitText("cleared", wait)
	if !ok || m.DroppedMs == nil {
		t.Fatalf("no cleared reply: %+v", m)
	}
	if *m.DroppedMs < 3500 || *m.DroppedMs > 4800 {
		t.Errorf("dropped_ms %d, want about 5000 minus what played", *m.DroppedMs)
	}
	if mk, ok := bot.WaitText("mark", wait); !ok || mk.Name != "after-5s" {
		t.Errorf("the mark behind cleared audio was not answered: %+v", mk)
	}
	// Playout stops within 40 ms of the clear.
	var late int
	deadline := time.After(500 * time.Millisecond)
collect:
	for {
		select {
		case p := <-phone.peer.Packets:
			if p.At.Sub(cleared) > 40*time.Millisecond {
				late++
			}
		case <-deadline:
			break collect
		}
	}
	if late > 0 {
		t.Errorf("%d packets played more than 40 ms after clear", late)
	}

	// A mark behind 300 ms of audio comes back when it has played.
	sent := time.Now()
	if err := bot.SendPCM(audiotest.Tone(8000, 8000*3/10, 0.3, 700)); err != nil {
		t.Fatal(err)
	}
	if err := bot.SendText(`{"type":"mark","name":"short"}`); err != nil {
		t.Fatal(err)
	}
	mk, ok := bot.WaitText("mark", wait)
	if !ok || mk.Name != "short" {
		t.Fatalf("mark not answered: %+v", mk)
	}
	if d := mk.At.Sub(sent); d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("mark answered %v after 300 ms of audio", d)
	}
	// Other text is ignored and the socket stays up.
	if err := bot.SendText(`not json`); err != nil {
		t.Fatal(err)
	}
	if err := bot.SendText(`{"type":"mark","name":"still-here"}`); err != nil {
		t.Fatal(err)
	}
	if mk, ok := bot.WaitText("mark", wait); !ok || mk.Name != "still-here" {
		t.Fatalf("socket did not survive other text: %+v", mk)
	}
}

// TestWSAudioTokens: a token works once; unknown, malformed and reused tokens get 1008.
func TestWSAudioTokens(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	id, token := wsEndpoint(t, c, nil)
	connectAudio(t, srv, c, id, token)
	for _, tok := range []string{token, uuid.NewString(), "not-a-uuid"} {
		a, err := testserver.DialAudio(t, srv, tok, true)
		if err != nil {
			t.Fatalf("token %q: handshake failed: %v", tok, err)
		}
		code, ok := a.CloseCode(wait)
		if !ok || code != 1008 {
			t.Errorf("token %q: close code %d (%v), want 1008", tok, code, ok)
		}
		select {
		case m := <-a.Audio:
			t.Errorf("token %q: got audio %d samples", tok, len(m.PCM))
		case m := <-a.Text:
			t.Errorf("token %q: got text %+v", tok, m)
		default:
		}
	}
}

// TestWSAudioConnectTimeout: no socket in time → the event, and the endpoint is gone.
func TestWSAudioConnectTimeout(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{WSAudio: wsaudio.Options{ConnectTimeout: 300 * time.Millisecond}})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	id, token := wsEndpoint(t, c, nil)
	ev := c.WaitEvent(protocol.EventWSConnectTimeout, wait)
	var d endpointEvent
	decodeData(t, ev.Data, &d)
	if d.EndpointID != id {
		t.Fatalf("connect_timeout %s", ev.Data)
	}
	var info struct {
		Endpoints []json.RawMessage `json:"endpoints"`
	}
	c.MustCall("session.info", nil, &info)
	if len(info.Endpoints) != 0 {
		t.Fatalf("endpoint still listed: %s", info.Endpoints)
	}
	a, err := testserver.DialAudio(t, srv, token, true)
	if err != nil {
		t.Fatal(err)
	}
	if code, ok := a.CloseCode(wait); !ok || code != 1008 {
		t.Errorf("late socket: close code %d, want 1008", code)
	}
	c.ExpectError("endpoint.remove", map[string]any{"endpoint_id": id}, protocol.CodeEndpointError)
}

// TestWSAudioDisconnectAndRemove: the bot hanging up makes the endpoint disconnected (event)
// and it stays until removed; endpoint.remove closes a live socket with 1000.
func TestWSAudioDisconnectAndRemove(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	id, token := wsEndpoint(t, c, nil)
	bot := connectAudio(t, srv, c, id, token)
	bot.Close()
	st := c.WaitEvent(protocol.EventEndpointStateChanged, wait)
	var sc stateChange
	decodeData(t, st.Data, &sc)
	if sc.EndpointID != id || sc.OldState != "connected" || sc.NewState != "disconnected" {
		t.Fatalf("state_changed %s", st.Data)
	}
	ev := c.WaitEvent(protocol.EventWSDisconnected, wait)
	var d endpointEvent
	decodeData(t, ev.Data, &d)
	if d.EndpointID != id {
		t.Fatalf("ws.disconnected %s", ev.Data)
	}
	info := c.SessionInfo()
	if len(info.Endpoints) != 1 || info.Endpoints[0].State != "disconnected" {
		t.Fatalf("session.info after hang-up: %+v", info.Endpoints)
	}
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil)

	id2, token2 := wsEndpoint(t, c, nil)
	bot2 := connectAudio(t, srv, c, id2, token2)
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id2}, nil)
	if code, ok := bot2.CloseCode(wait); !ok || code != 1000 {
		t.Errorf("endpoint.remove: close code %d (%v), want 1000", code, ok)
	}
	if v := srv.MetricValue(t, "rtpbridge_endpoints_active"); v != 0 {
		t.Errorf("rtpbridge_endpoints_active = %v", v)
	}
}

// TestWSAudioSlowReader: a bot that never reads loses outbound audio and is dropped after the
// write wait; the session it is in keeps routing in real time meanwhile.
func TestWSAudioSlowReader(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{WSAudio: wsaudio.Options{WriteWait: time.Second}})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	var res struct {
		EndpointID   string `json:"endpoint_id"`
		ConnectToken string `json:"connect_token"`
	}
	c.MustCall("endpoint.create_websocket", map[string]any{"sample_rate": 48000, "direction": "recvonly"}, &res)
	if _, err := testserver.DialAudio(t, srv, res.ConnectToken, false); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent(protocol.EventWSConnected, wait)

	// 3000 frames of a (48 kHz towards the bot: about 5.8 MB), five times real time: the
	// socket backs up, and b must still get every packet as they come.
	h := rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 1, SSRC: 0xabc}
	const n = 3000
	received := make(chan int, 1)
	go func() {
		got := 0
		deadline := time.After(30 * time.Second)
		for got < n {
			select {
			case <-b.peer.Packets:
				got++
			case <-deadline:
				received <- got
				return
			}
		}
		received <- got
	}()
	disconnected := make(chan struct{})
	go func() {
		defer close(disconnected)
		for m := range c.Messages {
			if m.Event == protocol.EventWSDisconnected {
				return
			}
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		a.peer.Send(h, rtppeer.Pattern(i, 160))
		h.SequenceNumber++
		h.Timestamp += 160
		if d := time.Until(start.Add(time.Duration(i+1) * 4 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	select {
	case <-disconnected:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stalled bot was not dropped")
	}
	if got := <-received; got < n*98/100 {
		t.Errorf("b received %d of %d packets while the bot stalled", got, n)
	}
}

// TestWSAudioParams: parameter validation and defaults.
func TestWSAudioParams(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	for _, p := range []map[string]any{
		{"sample_rate": 44100},
		{"sample_rate": "8000"},
		{"flush_ms": 30},
		{"flush_ms": 1020},
		{"flush_ms": -20},
		{"direction": "both"},
	} {
		c.ExpectError("endpoint.create_websocket", p, protocol.CodeInvalidParams)
	}
	id, _ := wsEndpoint(t, c, map[string]any{"flush_ms": 1000, "sample_rate": 48000, "direction": "sendonly"})
	info := c.SessionInfo()
	if len(info.Endpoints) != 1 {
		t.Fatalf("endpoints %+v", info.Endpoints)
	}
	e := info.Endpoints[0]
	if e.EndpointID != id || e.EndpointType != "websocket" || e.Direction != "sendonly" || e.State != "connecting" || e.Codec == nil || *e.Codec != "L16/48000" {
		t.Errorf("session.info entry %+v", e)
	}
}

// TestWSAudioPing: a bot that answers pings stays; one that does not is dropped once a pong is
// overdue.
func TestWSAudioPing(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{WSAudio: wsaudio.Options{PingInterval: 100 * time.Millisecond, PongWait: 200 * time.Millisecond}})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	id, token := wsEndpoint(t, c, nil)
	connectAudio(t, srv, c, id, token) // reads, so gorilla answers every ping
	_, token2 := wsEndpoint(t, c, nil)
	if _, err := testserver.DialAudio(t, srv, token2, false); err != nil { // never reads
		t.Fatal(err)
	}
	start := time.Now()
	ev := c.WaitEvent(protocol.EventWSDisconnected, wait)
	var d endpointEvent
	decodeData(t, ev.Data, &d)
	if d.EndpointID == id {
		t.Fatalf("the bot answering pings was dropped")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("dropped after %v", el)
	}
	time.Sleep(500 * time.Millisecond) // several more pings
	info := c.SessionInfo()
	for _, e := range info.Endpoints {
		if e.EndpointID == id && e.State != "connected" {
			t.Errorf("ponging bot is %s", e.State)
		}
	}
}

// TestWSAudioNoLeak: 20 bots connect, talk and go (removed, hung up, or with their session),
// and every goroutine they cost is gone afterwards.
func TestWSAudioNoLeak(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	c.MustCall("session.info", nil, nil)
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	c2 := testserver.Dial(t, srv)
	c2.CreateSession()
	var bots []*testserver.AudioClient
	var ids []string
	for i := 0; i < 20; i++ {
		cl := c
		if i%2 == 1 {
			cl = c2
		}
		id, token := wsEndpoint(t, cl, map[string]any{"sample_rate": 16000})
		bot, err := testserver.DialAudio(t, srv, token, true)
		if err != nil {
			t.Fatal(err)
		}
		cl.WaitEvent(protocol.EventWSConnected, wait)
		if err := bot.SendPCM(audiotest.Tone(16000, 3200, 0.3, 500)); err != nil {
			t.Fatal(err)
		}
		bots, ids = append(bots, bot), append(ids, id)
	}
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 20; i += 2 {
		switch i % 4 {
		case 0:
			c.MustCall("endpoint.remove", map[string]any{"endpoint_id": ids[i]}, nil)
		case 2:
			bots[i].Close()
		}
	}
	c2.MustCall("session.destroy", nil, nil) // the odd ones go with their session
	for _, b := range bots {
		b.Close()
	}
	for i := 2; i < 20; i += 4 { // hung up: disconnected, still there until removed
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": ids[i]}, nil)
	}
	if n := len(sessionEndpoints(t, c)); n != 0 {
		t.Fatalf("%d endpoints left", n)
	}
	c2.Conn().Close()
	testserver.Eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

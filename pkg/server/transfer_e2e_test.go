package server_test

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// End-to-end tests of endpoint.transfer (PROTOCOL.md §22 with D4): a phone's leg moves between
// sessions while audio flows both ways; the phone must not notice.

type transferResult struct {
	EndpointID      string `json:"endpoint_id"`
	TargetSessionID string `json:"target_session_id"`
}

// sessionEndpoints lists a session's endpoint ids.
func sessionEndpoints(t *testing.T, c *testserver.Client) map[string]string {
	t.Helper()
	info := c.SessionInfo()
	out := map[string]string{}
	for _, e := range info.Endpoints {
		out[e.EndpointID] = e.EndpointType
	}
	return out
}

// toneEndpoint adds a sine tone endpoint playing until removed.
func toneEndpoint(t *testing.T, c *testserver.Client, freq float64) string {
	t.Helper()
	var res struct {
		EndpointID string `json:"endpoint_id"`
	}
	c.MustCall("endpoint.create_tone", map[string]any{"tone": "sine", "frequency": freq}, &res)
	return res.EndpointID
}

// streamForever sends PCMU audio from a phone in real time until stop is closed.
func streamForever(wg *sync.WaitGroup, p *rtppeer.Peer, payload []byte, stop <-chan struct{}) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		h := rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 1, SSRC: 0x5150}
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.Send(h, payload)
			h.SequenceNumber++
			h.Timestamp += 160
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
		}
	}()
}

// collector gathers a phone's received packets on its own goroutine.
type collector struct {
	mu   sync.Mutex
	pkts []rtppeer.Packet
	stop chan struct{}
	done chan struct{}
}

func collect(p *rtppeer.Peer) *collector {
	c := &collector{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case pkt := <-p.Packets:
				c.mu.Lock()
				c.pkts = append(c.pkts, pkt)
				c.mu.Unlock()
			case <-c.stop:
				return
			}
		}
	}()
	return c
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pkts)
}

func (c *collector) finish() []rtppeer.Packet {
	close(c.stop)
	<-c.done
	return c.pkts
}

// maxStep is the largest timestamp step (8 kHz ticks) a moving leg may show: the two sessions'
// 20 ms media clocks are independent, so the last frame from the source may come up to 20 ms
// before the hand-over and the first from the target up to 20 ms after it; the hand-over itself
// (one command on the target) adds about a millisecond.
const maxStep = 320 + 16

// checkSeamless fails unless pkts are one stream as a jitter buffer wants it: one SSRC,
// sequence numbers without gap or repeat, timestamps that never go back and never jump by
// more than maxStep, and no arrival gap beyond maxGap.
func checkSeamless(t *testing.T, pkts []rtppeer.Packet, maxGap time.Duration) {
	t.Helper()
	checkStreamSteps(t, pkts, maxStep, maxGap)
}

// checkStreamSteps is checkSeamless with a bound on the timestamp step of its own.
func checkStreamSteps(t *testing.T, pkts []rtppeer.Packet, maxStep uint32, maxGap time.Duration) {
	t.Helper()
	var worstTS uint32
	var worstArrival time.Duration
	for i := 1; i < len(pkts); i++ {
		prev, h := pkts[i-1].Header, pkts[i].Header
		if h.SSRC != prev.SSRC {
			t.Fatalf("packet %d: SSRC %x → %x", i, prev.SSRC, h.SSRC)
		}
		if h.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d → %d", i, prev.SequenceNumber, h.SequenceNumber)
		}
		d := h.Timestamp - prev.Timestamp
		if int32(d) <= 0 || d > maxStep {
			t.Fatalf("packet %d: timestamp %d → %d (step %d, want 1..%d)", i, prev.Timestamp, h.Timestamp, int32(d), maxStep)
		}
		worstTS = max(worstTS, d)
		worstArrival = max(worstArrival, pkts[i].At.Sub(pkts[i-1].At))
	}
	t.Logf("%d packets, one SSRC, largest timestamp step %d, largest arrival gap %v", len(pkts), worstTS, worstArrival)
	if worstArrival > maxGap {
		t.Errorf("arrival gap %v > %v", worstArrival, maxGap)
	}
}

// transferSetup: two sessions each playing its own tone, and a phone (PCMU, sending audio) in
// the first.
func transferSetup(t *testing.T, mutate func(*config.Config), tune server.Tuning) (srv *testserver.Server, ca, cb *testserver.Client, sa, sb string, phone *leg) {
	t.Helper()
	srv = testserver.Start(t, mutate, tune)
	ca, cb = testserver.Dial(t, srv), testserver.Dial(t, srv)
	sa, sb = ca.CreateSession(), cb.CreateSession()
	toneEndpoint(t, ca, 1000)
	toneEndpoint(t, cb, 1000)
	phone = legFromOffer(t, ca, "sendrecv", "0 PCMU/8000")
	return
}

// TestTransferBackAndForth: a call with PCMU flowing both ways is transferred A→B→A 100 times
// while a tone plays in each session; the phone sees one SSRC, continuous sequence numbers and
// timestamps, no gap over 40 ms, and the tone throughout.
func TestTransferBackAndForth(t *testing.T) {
	_, ca, cb, sa, sb, phone := transferSetup(t, nil, server.Tuning{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	streamForever(&wg, phone.peer, pcmuTone(t, 1)[0], stop)
	defer func() { close(stop); wg.Wait() }()
	if got := phone.peer.Collect(10, wait); len(got) < 10 {
		t.Fatalf("no audio before the transfers: %d packets", len(got))
	}
	col := collect(phone.peer)

	const rounds = 100
	for i := 0; i < rounds; i++ {
		from, to, target := ca, cb, sb
		if i%2 == 1 {
			from, to, target = cb, ca, sa
		}
		var res transferResult
		from.MustCall("endpoint.transfer", map[string]any{"endpoint_id": phone.id, "target_session_id": target}, &res)
		if res.EndpointID != phone.id || res.TargetSessionID != target {
			t.Fatalf("round %d: result %+v", i, res)
		}
		out := from.WaitEvent(protocol.EventTransferredOut, wait)
		var o struct {
			EndpointID      string `json:"endpoint_id"`
			TargetSessionID string `json:"target_session_id"`
		}
		decodeData(t, out.Data, &o)
		if o.EndpointID != phone.id || o.TargetSessionID != target {
			t.Fatalf("round %d: transferred_out %s", i, out.Data)
		}
		in := to.WaitEvent(protocol.EventTransferredIn, wait)
		var n struct {
			EndpointID      string `json:"endpoint_id"`
			SourceSessionID string `json:"source_session_id"`
			EndpointType    string `json:"endpoint_type"`
			Direction       string `json:"direction"`
			State           string `json:"state"`
		}
		decodeData(t, in.Data, &n)
		if n.EndpointID != phone.id || n.EndpointType != "rtp" || n.Direction != "sendrecv" || n.State != "connected" || (n.SourceSessionID != sa && n.SourceSessionID != sb) || n.SourceSessionID == target {
			t.Fatalf("round %d: transferred_in %s", i, in.Data)
		}
		// Some audio in each session before moving on.
		for c := col.count() + 3; col.count() < c; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	pkts := col.finish()
	checkSeamless(t, pkts, maxJitter())
	var payloads [][]byte
	for _, p := range pkts {
		payloads = append(payloads, p.Payload)
	}
	pcm := audiotest.DecodeULaw(concat(payloads))
	if f := audiotest.DominantFrequency(pcm, 8000); math.Abs(f-1000) > 3 {
		t.Errorf("phone hears %.1f Hz, want the 1000 Hz tone", f)
	}
	if eps := sessionEndpoints(t, ca); eps[phone.id] != "rtp" || len(eps) != 2 {
		t.Errorf("session A after an even number of transfers: %v", eps)
	}
	if eps := sessionEndpoints(t, cb); len(eps) != 1 {
		t.Errorf("session B: %v", eps)
	}
}

// expectAudio fails unless the phone keeps receiving audio.
func expectAudio(t *testing.T, p *rtppeer.Peer) {
	t.Helper()
	p.Drain()
	if got := p.Collect(10, 2*time.Second); len(got) < 10 {
		t.Fatalf("the phone stopped hearing its session: %d packets", len(got))
	}
}

// noEvents fails if c received any of the transfer events (its queue is read up to now).
func noEvents(t *testing.T, c *testserver.Client, names ...string) {
	t.Helper()
	c.MustCall("session.info", nil, nil) // events caused earlier are flushed before this reply
	for {
		select {
		case m := <-c.Messages:
			for _, n := range names {
				if m.Event == n {
					t.Errorf("unexpected %s: %s", n, m.Data)
				}
			}
		default:
			return
		}
	}
}

// TestTransferRefusals: requests refused before anything moves.
func TestTransferRefusals(t *testing.T) {
	_, ca, cb, sa, sb, phone := transferSetup(t, func(c *config.Config) { c.MaxEndpointsPerSession = 3 }, server.Tuning{})
	tone := ""
	for id, typ := range sessionEndpoints(t, ca) {
		if typ == "tone" {
			tone = id
		}
	}
	var br bridgeResult
	ca.MustCall("session.bridge", map[string]any{"target_session_id": sb}, &br)
	cb.MustCall("endpoint.remove", map[string]any{"endpoint_id": br.TargetEndpointID}, nil) // B: tone only
	ca.WaitEvent(protocol.EventEndpointRemoved, wait)
	ca.MustCall("session.bridge", map[string]any{"target_session_id": sb}, &br)
	wsEndpoint(t, cb, nil)
	wsID := ""
	for id, typ := range sessionEndpoints(t, cb) {
		if typ == "websocket" {
			wsID = id
		}
	}
	for _, tc := range []struct {
		from   *testserver.Client
		params map[string]any
		code   string
		msg    string
	}{
		{ca, map[string]any{"endpoint_id": phone.id, "target_session_id": sa}, protocol.CodeInvalidParams, ""},
		{ca, map[string]any{"endpoint_id": phone.id, "target_session_id": "6d0e9d6c-1111-4111-8111-111111111111"}, protocol.CodeSessionNotFound, ""},
		{ca, map[string]any{"endpoint_id": phone.id}, protocol.CodeInvalidParams, ""},
		{ca, map[string]any{"target_session_id": sb}, protocol.CodeInvalidParams, ""},
		{ca, map[string]any{"endpoint_id": "6d0e9d6c-1111-4111-8111-111111111111", "target_session_id": sb}, protocol.CodeEndpointError, "Endpoint not found"},
		{ca, map[string]any{"endpoint_id": tone, "target_session_id": sb}, protocol.CodeEndpointError, "File endpoints cannot be transferred"},
		{ca, map[string]any{"endpoint_id": br.EndpointID, "target_session_id": sb}, protocol.CodeEndpointError, "Bridge endpoints cannot be transferred"},
		{cb, map[string]any{"endpoint_id": wsID, "target_session_id": sa}, protocol.CodeEndpointError, "WebSocket endpoints cannot be transferred"},
	} {
		e := tc.from.ExpectError("endpoint.transfer", tc.params, tc.code)
		if tc.msg != "" && e.Message != tc.msg {
			t.Errorf("%v: message %q, want %q", tc.params, e.Message, tc.msg)
		}
	}
	// B is full now (tone, bridge half, websocket): the phone stays in A, still hearing it.
	e := ca.ExpectError("endpoint.transfer", map[string]any{"endpoint_id": phone.id, "target_session_id": sb}, protocol.CodeTransferFailed)
	if e.Message != "Maximum endpoints per session reached" {
		t.Errorf("message %q", e.Message)
	}
	if eps := sessionEndpoints(t, ca); eps[phone.id] != "rtp" {
		t.Fatalf("phone left A: %v", eps)
	}
	expectAudio(t, phone.peer)
	noEvents(t, ca, protocol.EventTransferredOut, protocol.EventTransferredIn)
	noEvents(t, cb, protocol.EventTransferredOut, protocol.EventTransferredIn)
}

// TestTransferUnresponsiveTarget: the target stops answering after the capacity check (its
// insert times out, and runs later); the endpoint returns to the source and keeps carrying
// audio, exactly once; no transfer events.
func TestTransferUnresponsiveTarget(t *testing.T) {
	var n atomic.Int32
	stallAt := atomic.Int32{}
	tune := server.Tuning{CommandTimeout: 300 * time.Millisecond, BeforeCommand: func(method string) {
		if method == "endpoint.transfer" && n.Add(1) == stallAt.Load() {
			time.Sleep(700 * time.Millisecond)
		}
	}}
	srv, ca, cb, _, sb, phone := transferSetup(t, nil, tune)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	streamForever(&wg, phone.peer, pcmuTone(t, 1)[0], stop)
	defer func() { close(stop); wg.Wait() }()
	expectAudio(t, phone.peer)

	for _, step := range []int32{2, 4} { // the capacity check; the insert (after checks on A)
		n.Store(0)
		stallAt.Store(step)
		col := collect(phone.peer)
		e := ca.ExpectError("endpoint.transfer", map[string]any{"endpoint_id": phone.id, "target_session_id": sb}, protocol.CodeTransferFailed)
		t.Logf("stalled step %d: %s", step, e.Message)
		time.Sleep(time.Second) // the stalled command has run by now
		if eps := sessionEndpoints(t, ca); eps[phone.id] != "rtp" {
			t.Fatalf("step %d: phone not in A: %v", step, eps)
		}
		if eps := sessionEndpoints(t, cb); len(eps) != 1 {
			t.Fatalf("step %d: B holds %v", step, eps)
		}
		pkts := col.finish()
		// A stalled capacity check holds nothing back. A stalled insert leaves the leg in
		// nobody's session until the wait for the target ends (the command timeout, 300 ms,
		// here): the phone hears a gap that long, on one unbroken stream.
		bound := uint32(maxStep)
		if step == 4 {
			bound = uint32((300*time.Millisecond+40*time.Millisecond)/time.Millisecond) * 8
		}
		checkStreamSteps(t, pkts, bound, 2*time.Second)
		expectAudio(t, phone.peer)
		noEvents(t, ca, protocol.EventTransferredOut, protocol.EventTransferredIn)
		noEvents(t, cb, protocol.EventTransferredOut, protocol.EventTransferredIn)
	}
	if v := srv.MetricValue(t, "rtpbridge_endpoints_active"); v != 3 {
		t.Errorf("rtpbridge_endpoints_active = %v, want 3", v)
	}
}

// TestTransferSRTP: an SDES-SRTP leg moves back and forth with its keys, rollover counter and
// replay window: every packet it sends decrypts with the one context the peer set up from the
// answer, on one continuous stream, and the peer's own packets keep being accepted.
func TestTransferSRTP(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	ca, cb := testserver.Dial(t, srv), testserver.Dial(t, srv)
	sa, sb := ca.CreateSession(), cb.CreateSession()
	toneEndpoint(t, ca, 1000)
	toneEndpoint(t, cb, 1000)
	suite := srtpSuiteNamed(t, "AES_CM_128_HMAC_SHA1_80")
	id, _, p := srtpLegFromOffer(t, ca, suite, "RTP/SAVP", "RTP/SAVP")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	payload := pcmuTone(t, 1)[0]
	go func() { // the phone's own audio, SRTP, in real time
		defer wg.Done()
		h := rtp.Header{PayloadType: 0, SequenceNumber: 65000, Timestamp: 1, SSRC: 0x77}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			b, err := srtpProtectRTP(p.tx, h, payload)
			if err != nil {
				t.Error(err)
				return
			}
			p.sendRaw(b)
			h.SequenceNumber++
			h.Timestamp += 160
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	if got := p.collect(10, wait); len(got) < 10 {
		t.Fatalf("no SRTP audio before the transfers: %d packets", len(got))
	}
	for i := 0; i < 20; i++ {
		from, target := ca, sb
		if i%2 == 1 {
			from, target = cb, sa
		}
		t0 := time.Now()
		from.MustCall("endpoint.transfer", map[string]any{"endpoint_id": id, "target_session_id": target}, nil)
		if d := time.Since(t0); d > 20*time.Millisecond {
			t.Logf("transfer %d took %v", i, d)
		}
		time.Sleep(60 * time.Millisecond)
	}
	raws := p.collect(1<<20, 300*time.Millisecond)
	pkts := p.decryptAll(raws)
	for i := range pkts {
		pkts[i].At = raws[i].at
	}
	checkSeamless(t, pkts, maxJitter())
	if v := srv.MetricValue(t, "rtpbridge_srtp_errors_total"); v != 0 {
		t.Errorf("rtpbridge_srtp_errors_total = %v: the phone's packets were refused after a move", v)
	}
	// Stats of the leg kept counting inbound across the moves.
	info := ca.SessionInfo()
	found := false
	for _, e := range info.Endpoints {
		found = found || (e.EndpointID == id && e.State == "connected")
	}
	if !found {
		t.Errorf("SRTP leg not back in A, connected: %+v", info.Endpoints)
	}
}

// TestTransferMidDigit: DTMF detection across a move. A digit that ended just before the
// transfer is reported once, by the source; the end packet's repeats (RFC 4733 sends three)
// that arrive after the transfer are not reported again by the target; the next digit is the
// target's.
func TestTransferMidDigit(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	ca, cb := testserver.Dial(t, srv), testserver.Dial(t, srv)
	ca.CreateSession()
	sb := cb.CreateSession()
	phone := legFromOffer(t, ca, "sendrecv", "0 PCMU/8000", "101 telephone-event/8000")
	h := rtp.Header{PayloadType: 101, SequenceNumber: 10, Timestamp: 8000, SSRC: 0xd7, Marker: true}
	event := func(duration uint16, end bool) []byte {
		flags := byte(10)
		if end {
			flags |= 0x80
		}
		return []byte{5, flags, byte(duration >> 8), byte(duration)}
	}
	send := func(duration uint16, end bool) {
		phone.peer.Send(h, event(duration, end))
		h.SequenceNumber++
		h.Marker = false
		time.Sleep(20 * time.Millisecond)
	}
	for d := uint16(160); d <= 640; d += 160 {
		send(d, false)
	}
	send(800, true)
	ev := ca.WaitEvent(protocol.EventDTMF, wait)
	var d struct {
		EndpointID string `json:"endpoint_id"`
		Digit      string `json:"digit"`
		DurationMS int    `json:"duration_ms"`
	}
	decodeData(t, ev.Data, &d)
	if d.EndpointID != phone.id || d.Digit != "5" || d.DurationMS != 100 {
		t.Fatalf("dtmf %s, want digit 5 of 100 ms", ev.Data)
	}
	ca.MustCall("endpoint.transfer", map[string]any{"endpoint_id": phone.id, "target_session_id": sb}, nil)
	cb.WaitEvent(protocol.EventTransferredIn, wait)
	send(800, true) // the end packet's repeats
	send(800, true)
	time.Sleep(200 * time.Millisecond)
	noEvents(t, cb, protocol.EventDTMF)
	// A new digit after the move is the target's.
	h.Timestamp += 2000
	h.Marker = true
	send(160, false)
	send(320, true)
	ev = cb.WaitEvent(protocol.EventDTMF, wait)
	decodeData(t, ev.Data, &d)
	if d.EndpointID != phone.id || d.Digit != "5" || d.DurationMS != 40 {
		t.Fatalf("dtmf after the move %s, want digit 5 of 40 ms", ev.Data)
	}
	noEvents(t, ca, protocol.EventDTMF)
}

// TestTransferWebRTC: a browser-like pion client connected to session A is transferred A→B→A
// ten times while each session plays a tone into it: ICE, DTLS and SRTP stay up (no new
// handshake), and the client sees one stream: one SSRC, continuous sequence numbers, Opus
// timestamps never stepping more than 40 ms (+2 %), and the tone throughout.
func TestTransferWebRTC(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	ca, cb := testserver.Dial(t, srv), testserver.Dial(t, srv)
	sa, sb := ca.CreateSession(), cb.CreateSession()
	toneEndpoint(t, ca, 1000)
	toneEndpoint(t, cb, 1000)
	wp, res := webrtcOfferLeg(t, ca)
	if got := wp.Collect(10, time.Second, 5*time.Second); len(got) < 10 {
		t.Fatalf("no audio before the transfers: %d packets", len(got))
	}
	var pkts []rtppeer.Packet
	add := func(in []webrtcpeer.Packet) {
		for _, p := range in {
			pkts = append(pkts, rtppeer.Packet{Header: p.Header, Payload: p.Payload, At: p.At})
		}
	}
	for i := 0; i < 10; i++ {
		from, to, target := ca, cb, sb
		if i%2 == 1 {
			from, to, target = cb, ca, sa
		}
		var tr transferResult
		from.MustCall("endpoint.transfer", map[string]any{"endpoint_id": res.EndpointID, "target_session_id": target}, &tr)
		from.WaitEvent(protocol.EventTransferredOut, wait)
		in := to.WaitEvent(protocol.EventTransferredIn, wait)
		var n struct {
			EndpointType string `json:"endpoint_type"`
			State        string `json:"state"`
		}
		decodeData(t, in.Data, &n)
		if n.EndpointType != "webrtc" || n.State != "connected" {
			t.Fatalf("round %d: transferred_in %s", i, in.Data)
		}
		add(wp.Collect(10, time.Second, 5*time.Second)) // audio from the new session
	}
	add(wp.Collect(1<<20, 200*time.Millisecond, time.Second))
	checkStreamSteps(t, pkts, 2*960+38, maxJitter())
	var payloads [][]byte
	for _, p := range pkts[len(pkts)/2:] {
		payloads = append(payloads, p.Payload)
	}
	pcm := audiotest.DecodePayloads(t, "opus", payloads)
	if f := audiotest.DominantFrequency(pcm, audiotest.CodecSampleRate("opus")); math.Abs(f-1000) > 5 {
		t.Errorf("client hears %.1f Hz, want the 1000 Hz tone", f)
	}
	if eps := sessionEndpoints(t, ca); eps[res.EndpointID] != "webrtc" {
		t.Errorf("session A after an even number of transfers: %v", eps)
	}
}

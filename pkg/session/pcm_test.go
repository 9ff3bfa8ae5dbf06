package session

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// toneLeg is a PCM leg for these tests: it sends a sine at its native rate on the session's
// clock and records what the session writes to it.
type toneLeg struct {
	id         uuid.UUID
	dir        endpoint.Direction
	rate       int
	freq, amp  float64
	n          int // samples generated so far
	mu         sync.Mutex
	state      endpoint.State
	got        []int16
	reads      int
	frameSizes map[int]int
}

func newToneLeg(dir endpoint.Direction, rate int, freq float64) *toneLeg {
	return &toneLeg{id: uuid.New(), dir: dir, rate: rate, freq: freq, amp: 8000, state: endpoint.StatePlaying, frameSizes: map[int]int{}}
}

func (l *toneLeg) ID() uuid.UUID                              { return l.id }
func (l *toneLeg) Type() string                               { return "tone" }
func (l *toneLeg) Direction() endpoint.Direction              { return l.dir }
func (l *toneLeg) Start(*mediaio.Worker, endpoint.Sink) error { return nil }
func (l *toneLeg) Close()                                     {}
func (l *toneLeg) Tick(time.Time)                             {}
func (l *toneLeg) RTP() endpoint.RTPMedia                     { return nil }
func (l *toneLeg) PCM() endpoint.PCMMedia                     { return l }
func (l *toneLeg) Rate() int                                  { return l.rate }

func (l *toneLeg) State() endpoint.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *toneLeg) SetState(s endpoint.State) (endpoint.State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.state
	l.state = s
	return old, old != s
}

func (l *toneLeg) ReadFrame(frame []int16, _ time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.freq == 0 {
		return false
	}
	for i := range frame {
		frame[i] = int16(l.amp * math.Sin(2*math.Pi*l.freq*float64(l.n)/float64(l.rate)))
		l.n++
	}
	return true
}

func (l *toneLeg) WriteFrame(frame []int16, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frameSizes[len(frame)]++
	l.got = append(l.got, frame...)
}

func (l *toneLeg) received() []int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int16(nil), l.got...)
}

// mediaTestManager starts a manager with real media options on 127.0.0.1, ports lo to hi and
// in-band DTMF off (these tests count decoders, and "auto" gives every leg without
// telephone-event a detector of its own, and so a decode); poller nil gives it its own.
func mediaTestManager(t *testing.T, lo, hi int, poller *mediaio.Poller) *Manager {
	t.Helper()
	ip := netip.MustParseAddr("127.0.0.1")
	ports, err := rtpnet.NewPortAllocator(ip, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	m := testManager(Options{InbandDTMF: "off", Media: MediaOptions{Ports: ports, MediaIP: ip, RTPPortRange: [2]int{lo, hi},
		MaxSDPBytes: 64 << 10, TranscodeCacheSize: 8, OpusComplexity: 9, Poller: poller}})
	t.Cleanup(m.Close)
	return m
}

// mediaTestSession starts a media test manager and one session.
func mediaTestSession(t *testing.T) *Session {
	t.Helper()
	s, err := mediaTestManager(t, 41000, 41999, nil).Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addRTPPeer answers peer's offer of one codec in s and points the peer at the answer.
func addRTPPeer(t *testing.T, s *Session, peer *rtppeer.Peer, format string, dir endpoint.Direction) *leg {
	t.Helper()
	fmtAndAttrs := strings.SplitN(format, " ", 2)
	offer := peer.Offer(fmtAndAttrs[:1], fmtAndAttrs[1:]...)
	var id string
	_, err := s.Do("test.create", func(s *Session) (any, error) {
		res, err := s.createFromOffer(&createFromOfferParams{SDP: &offer, Direction: dir})
		if err != nil {
			return nil, err
		}
		r := res.(map[string]string)
		id = r["endpoint_id"]
		peer.RemoteFromSDP(r["sdp_answer"], false)
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var l *leg
	s.Do("test.find", func(s *Session) (any, error) {
		l = s.media.byID[uuid.MustParse(id)]
		return nil, nil
	})
	return l
}

func addPCMLeg(t *testing.T, s *Session, ep endpoint.Leg) {
	t.Helper()
	if _, err := s.Do("test.add", func(s *Session) (any, error) {
		if err := ep.Start(s.media.worker, s.media); err != nil {
			return nil, err
		}
		s.media.add(ep, time.Now())
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A PCM leg's 48 kHz tone reaches a PCMU RTP peer paced by the session clock, on one continuous
// stream (timestamps +160, sequence +1 per 20 ms), at the right frequency and quality.
func TestPCMLegToRTP(t *testing.T) {
	s := mediaTestSession(t)
	peer := rtppeer.New(t)
	addRTPPeer(t, s, peer, "0", endpoint.SendRecv)
	addPCMLeg(t, s, newToneLeg(endpoint.SendOnly, 48000, 1000))

	pkts := peer.Collect(100, 5*time.Second)
	if len(pkts) < 100 {
		t.Fatalf("received %d packets, want 100", len(pkts))
	}
	var pcm []int16
	for i, p := range pkts {
		if p.Header.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("packet %d: PT %d, %d bytes", i, p.Header.PayloadType, len(p.Payload))
		}
		if i > 0 {
			prev := pkts[i-1].Header
			if p.Header.SequenceNumber != prev.SequenceNumber+1 || p.Header.Timestamp != prev.Timestamp+160 || p.Header.SSRC != prev.SSRC {
				t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, p.Header.SequenceNumber, p.Header.Timestamp, prev.SequenceNumber, prev.Timestamp)
			}
		}
		pcm = append(pcm, audiotest.DecodeULaw(p.Payload)...)
	}
	// Paced by the clock: 100 frames take about 2 s, never a burst.
	if d := pkts[99].At.Sub(pkts[0].At); d < 1800*time.Millisecond {
		t.Fatalf("100 frames arrived within %v: not paced at 20 ms", d)
	}
	pcm = pcm[800:] // past the resampler's start
	if f := audiotest.DominantFrequency(pcm, 8000); math.Abs(f-1000) > 10 {
		t.Fatalf("dominant frequency %.1f Hz, want 1000", f)
	}
	if snr, err := audiotest.SNR(pcm, 8000, 1000); err != nil || snr < 30 {
		t.Fatalf("SNR %.1f dB (%v), want ≥ 30", snr, err)
	}
}

// An RTP peer's G.722 tone reaches a 16 kHz PCM leg decoded, in exact 20 ms frames.
func TestRTPToPCMLeg(t *testing.T) {
	s := mediaTestSession(t)
	peer := rtppeer.New(t)
	addRTPPeer(t, s, peer, "9", endpoint.SendRecv)
	sink := newToneLeg(endpoint.RecvOnly, 16000, 0)
	addPCMLeg(t, s, sink)

	tone := audiotest.Tone(16000, 16000*3, 0.25, 1000)
	payloads := audiotest.EncodePayloads(t, "G722", tone)
	peer.Stream(rtp.Header{Version: 2, PayloadType: 9, SSRC: 0x1234, SequenceNumber: 1}, len(payloads), 160, false, func(i int) []byte { return payloads[i] })

	var got []int16
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got = sink.received(); len(got) >= len(tone)-640 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) < len(tone)-640 {
		t.Fatalf("PCM leg received %d samples, want about %d", len(got), len(tone))
	}
	sink.mu.Lock()
	sizes := sink.frameSizes
	sink.mu.Unlock()
	if len(sizes) != 1 || sizes[320] == 0 {
		t.Fatalf("frame sizes %v, want only 320-sample frames", sizes)
	}
	got = got[1600:]
	if f := audiotest.DominantFrequency(got, 16000); math.Abs(f-1000) > 10 {
		t.Fatalf("dominant frequency %.1f Hz, want 1000", f)
	}
	if snr, err := audiotest.SNR(got, 16000, 1000); err != nil || snr < 30 {
		t.Fatalf("SNR %.1f dB (%v), want ≥ 30", snr, err)
	}
}

// tapRecorder is an AudioTap that counts what it is given.
type tapRecorder struct {
	rate    int
	samples int
}

func (r *tapRecorder) TapRate() int                   { return r.rate }
func (r *tapRecorder) Audio(pcm []int16, _ time.Time) { r.samples += len(pcm) }

// A source feeding several consumers is decoded once: an Opus leg sent to a PCMU leg, a G.722
// leg and an 8 kHz tap has one decoder, run at 16 kHz (the highest rate wanted), and one
// resampler to 8 kHz shared by the PCMU encoder and the tap. A source that only passes
// through has no decoder at all.
func TestDecodeOncePerSource(t *testing.T) {
	s := mediaTestSession(t)
	opusPeer := rtppeer.New(t)
	opus := addRTPPeer(t, s, opusPeer, "111 a=rtpmap:111 opus/48000/2", endpoint.SendOnly)
	addRTPPeer(t, s, rtppeer.New(t), "0", endpoint.RecvOnly)
	addRTPPeer(t, s, rtppeer.New(t), "9", endpoint.RecvOnly)
	tap := &tapRecorder{rate: 8000}
	s.Do("test.check", func(s *Session) (any, error) {
		s.media.addAudioTap(opus, tap)
		if opus.src == nil || opus.src.dec == nil {
			t.Fatal("the Opus source has no decoder")
		}
		if opus.src.rate != 16000 {
			t.Errorf("Opus decoded at %d Hz, want 16000 (the highest rate wanted)", opus.src.rate)
		}
		if len(opus.src.views) != 1 || opus.src.views[0].rate != 8000 {
			t.Errorf("%d resampled views, want one at 8000 Hz", len(opus.src.views))
		}
		return nil, nil
	})
	tone := audiotest.Tone(48000, 48000, 0.25, 1000)
	payloads := audiotest.EncodePayloads(t, "opus", tone)
	opusPeer.Stream(rtp.Header{Version: 2, PayloadType: 111, SSRC: 0x99, SequenceNumber: 1}, len(payloads), 960, true, func(i int) []byte { return payloads[i] })
	testEventually(t, func() bool {
		var n int
		s.Do("test.tap", func(s *Session) (any, error) { n = tap.samples; return nil, nil })
		return n >= 8000-160
	})

	s2 := mediaTestSession(t)
	a := addRTPPeer(t, s2, rtppeer.New(t), "0", endpoint.SendOnly)
	addRTPPeer(t, s2, rtppeer.New(t), "0", endpoint.RecvOnly)
	s2.Do("test.check", func(s *Session) (any, error) {
		if a.src != nil {
			t.Error("a passthrough source is decoded")
		}
		if s.media.codecWork.Load() {
			t.Error("a passthrough session routes through the session loop")
		}
		return nil, nil
	})
}

func testEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A leg that does not send (recvonly) is routed nowhere, but its taps (detectors,
// recordings) still hear what its peer sends.
func TestRecvOnlyLegFeedsTaps(t *testing.T) {
	s := mediaTestSession(t)
	peer := rtppeer.New(t)
	l := addRTPPeer(t, s, peer, "0", endpoint.RecvOnly)
	tap := &tapRecorder{rate: 8000}
	s.Do("test.tap", func(s *Session) (any, error) { s.media.addAudioTap(l, tap); return nil, nil })
	payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 8000, 0.25, 1000))
	peer.Stream(rtp.Header{Version: 2, PayloadType: 0, SSRC: 0x77, SequenceNumber: 1}, len(payloads), 160, true, func(i int) []byte { return payloads[i] })
	testEventually(t, func() bool {
		var n int
		s.Do("test.tap", func(s *Session) (any, error) { n = tap.samples; return nil, nil })
		return n == 8000
	})
}

// A leg that converts its own frames is asked for its consumers' highest rate only when that
// is below its own: never for less than some consumer could hear.
func TestSelectRate(t *testing.T) {
	for _, tc := range []struct {
		native int
		rates  []int
		want   int
	}{
		{16000, []int{8000}, 8000},
		{48000, []int{8000, 16000}, 16000},
		{16000, []int{8000, 48000}, 16000},
		{16000, []int{16000}, 16000},
		{8000, []int{48000}, 8000},
		{44100, nil, 44100},
	} {
		if got := selectRate(tc.native, tc.rates); got != tc.want {
			t.Errorf("selectRate(%d, %v) = %d, want %d", tc.native, tc.rates, got, tc.want)
		}
	}
}

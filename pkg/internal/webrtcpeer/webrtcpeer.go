// Package webrtcpeer is a WebRTC client for tests: a full (non-lite) pion PeerConnection on
// 127.0.0.1 that offers or answers like a browser would, sends RTP on its audio track and
// collects what it receives. It shares no code with rtpbridge's WebRTC leg.
package webrtcpeer

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Codec is a codec the peer registers: SDP name ("opus", "PCMU", "PCMA", "G722") and payload type.
type Codec struct {
	Name string
	PT   uint8
}

// Common codecs, on the payload types browsers use.
var (
	Opus = Codec{"opus", 111}
	PCMU = Codec{"PCMU", 0}
	PCMA = Codec{"PCMA", 8}
	G722 = Codec{"G722", 9}
)

// Packet is a received RTP packet.
type Packet struct {
	Header  rtp.Header
	Payload []byte
	At      time.Time
}

// Peer is a test WebRTC client.
type Peer struct {
	t     testing.TB
	PC    *webrtc.PeerConnection
	Track *webrtc.TrackLocalStaticRTP
	// Sender sends Track; its RTCP is read (and kept in RTCPIn) so reports flow.
	Sender *webrtc.RTPSender
	// Packets holds received RTP packets; RTCPIn the RTCP received about our stream.
	Packets chan Packet
	RTCPIn  chan []rtcp.Packet
	// States receives every PeerConnection state change.
	States chan webrtc.PeerConnectionState

	wg   sync.WaitGroup
	once sync.Once
	// self is what the test's cleanup closes: emptied by Close, so a closed peer is not kept
	// alive until the test ends.
	self *atomic.Pointer[Peer]
}

// New makes a peer that registers codecs in order (the first is what it sends) plus
// telephone-event/48000 (PT 101) and /8000 (PT 126). It closes when the test ends.
func New(t testing.TB, codecs ...Codec) *Peer {
	t.Helper()
	if len(codecs) == 0 {
		codecs = []Codec{Opus}
	}
	me := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(Params(c), webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatalf("webrtcpeer: register %s: %v", c.Name, err)
		}
	}
	for _, te := range []struct {
		pt    uint8
		clock uint32
	}{{101, 48000}, {126, 8000}} {
		p := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(te.pt)}
		p.MimeType, p.ClockRate, p.SDPFmtpLine = "audio/telephone-event", te.clock, "0-16"
		if err := me.RegisterCodec(p, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatalf("webrtcpeer: register telephone-event: %v", err)
		}
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// The client closes when the test says so, not when rtpbridge ends DTLS (memory tests
	// measure the server's share by removing its endpoints while the clients stay).
	se.DisableCloseByDTLS(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("webrtcpeer: %v", err)
	}
	p := &Peer{
		t: t, PC: pc,
		Packets: make(chan Packet, 2048),
		RTCPIn:  make(chan []rtcp.Packet, 256),
		States:  make(chan webrtc.PeerConnectionState, 64),
	}
	track, err := webrtc.NewTrackLocalStaticRTP(Params(codecs[0]).RTPCodecCapability, "audio", "webrtcpeer")
	if err != nil {
		t.Fatalf("webrtcpeer: track: %v", err)
	}
	p.Track = track
	if p.Sender, err = pc.AddTrack(track); err != nil {
		t.Fatalf("webrtcpeer: add track: %v", err)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case p.States <- s:
		default:
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		defer p.wg.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case p.Packets <- Packet{Header: pkt.Header, Payload: pkt.Payload, At: time.Now()}:
			default:
			}
		}
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := p.Sender.ReadRTCP()
			if err != nil {
				return
			}
			select {
			case p.RTCPIn <- pkts:
			default:
			}
		}
	}()
	p.self = new(atomic.Pointer[Peer])
	p.self.Store(p)
	self := p.self
	t.Cleanup(func() {
		if q := self.Swap(nil); q != nil {
			q.Close()
		}
	})
	return p
}

// Params is the pion codec description of c.
func Params(c Codec) webrtc.RTPCodecParameters {
	p := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(c.PT)}
	switch strings.ToLower(c.Name) {
	case "opus":
		p.MimeType, p.ClockRate, p.Channels, p.SDPFmtpLine = webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1"
	case "pcmu":
		p.MimeType, p.ClockRate = webrtc.MimeTypePCMU, 8000
	case "pcma":
		p.MimeType, p.ClockRate = webrtc.MimeTypePCMA, 8000
	case "g722":
		p.MimeType, p.ClockRate = webrtc.MimeTypeG722, 8000
	default:
		panic("webrtcpeer: unknown codec " + c.Name)
	}
	return p
}

// Close ends the connection and waits for the peer's readers.
func (p *Peer) Close() {
	p.once.Do(func() {
		_ = p.PC.GracefulClose()
		p.wg.Wait()
		// The test's cleanup no longer needs the peer: churn tests' peers can be collected now.
		p.self.Store(nil)
	})
}

// Offer creates, applies and returns the peer's offer with its candidates.
func (p *Peer) Offer() string {
	p.t.Helper()
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		p.t.Fatalf("webrtcpeer: offer: %v", err)
	}
	return p.setLocal(offer)
}

// Answer applies rtpbridge's offer and returns the peer's answer.
func (p *Peer) Answer(offer string) string {
	p.t.Helper()
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.t.Fatalf("webrtcpeer: remote offer: %v\n%s", err, offer)
	}
	answer, err := p.PC.CreateAnswer(nil)
	if err != nil {
		p.t.Fatalf("webrtcpeer: answer: %v", err)
	}
	return p.setLocal(answer)
}

// SetAnswer applies rtpbridge's answer.
func (p *Peer) SetAnswer(answer string) {
	p.t.Helper()
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.t.Fatalf("webrtcpeer: remote answer: %v\n%s", err, answer)
	}
}

func (p *Peer) setLocal(d webrtc.SessionDescription) string {
	p.t.Helper()
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(d); err != nil {
		p.t.Fatalf("webrtcpeer: local description: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		p.t.Fatal("webrtcpeer: gathering timed out")
	}
	return p.PC.LocalDescription().SDP
}

// WaitState waits until the connection reaches want.
func (p *Peer) WaitState(want webrtc.PeerConnectionState, timeout time.Duration) error {
	if p.PC.ConnectionState() == want {
		return nil
	}
	deadline := time.After(timeout)
	for {
		select {
		case s := <-p.States:
			if s == want {
				return nil
			}
		case <-deadline:
			return errors.New("webrtcpeer: timed out waiting for " + want.String() + ", state " + p.PC.ConnectionState().String())
		}
	}
}

// Stream sends payloads on the track one per interval (wall clock), starting at h.
func (p *Peer) Stream(h rtp.Header, step uint32, interval time.Duration, payloads [][]byte) rtp.Header {
	start := time.Now()
	for i, pl := range payloads {
		h.Version = 2
		if err := p.Track.WriteRTP(&rtp.Packet{Header: h, Payload: pl}); err != nil {
			p.t.Errorf("webrtcpeer: write: %v", err)
			return h
		}
		h.SequenceNumber++
		h.Timestamp += step
		h.Marker = false
		if d := time.Until(start.Add(time.Duration(i+1) * interval)); d > 0 {
			time.Sleep(d)
		}
	}
	return h
}

// Collect gathers received packets until n arrived, none arrived for quiet, or overall passed.
func (p *Peer) Collect(n int, quiet, overall time.Duration) []Packet {
	var out []Packet
	deadline := time.After(overall)
	for len(out) < n {
		select {
		case pkt := <-p.Packets:
			out = append(out, pkt)
		case <-time.After(quiet):
			return out
		case <-deadline:
			return out
		}
	}
	return out
}

// Drain discards whatever has been received so far.
func (p *Peer) Drain() {
	for {
		select {
		case <-p.Packets:
		default:
			return
		}
	}
}

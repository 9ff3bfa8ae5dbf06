// Package webrtc is rtpbridge's WebRTC leg: a pion/webrtc PeerConnection run as an ICE-lite,
// DTLS-SRTP server on one UDP socket (PROTOCOL.md §6, §10, §13.5, §35). To its session it is an
// encoded-RTP leg like plain RTP: pion's goroutines hand decrypted RTP and RTCP to the session's
// Sink, the session calls Receive under its lock, and SendRTP writes the session's packets to
// pion's SRTP stream. Routing, transcoding, mixing and statistics are the session's.
package webrtc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/rtpstats"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// DefaultCodecs is the codec preference of WebRTC legs when the client names none: Opus first,
// then the wideband and narrowband codecs a SIP side may speak (D13).
var DefaultCodecs = []string{sdp.Opus, sdp.G722, sdp.PCMU, sdp.PCMA}

const (
	// gatherTimeout bounds the wait for our one host candidate. With a UDP mux it is there at
	// once; the bound only keeps a broken agent from holding the session loop.
	gatherTimeout = 2 * time.Second
	// rtcpInterval is PROTOCOL.md §28's RTCP report interval.
	rtcpInterval = 5 * time.Second
	// readBufferSize holds any datagram pion hands over (its receive MTU is 1460).
	readBufferSize = 1500
	// maxReadFailures consecutive failed reads with nothing read end a reader.
	maxReadFailures = 1000
)

// Options is what a WebRTC leg needs from the server.
type Options struct {
	// Ports binds the leg's UDP socket on media_ip. Required.
	Ports *Ports
	// LoggerFactory receives pion's logs; nil discards everything below errors.
	LoggerFactory logging.LoggerFactory
}

// Endpoint is a WebRTC leg. Its methods run under the session's lock except where noted; pion's
// goroutines only touch the atomics and call the Sink.
type Endpoint struct {
	id        uuid.UUID
	direction endpoint.Direction
	state     endpoint.State
	opts      Options

	conn *net.UDPConn
	mux  ice.UDPMux
	pc   *pion.PeerConnection
	tr   *pion.RTPTransceiver
	// track is our outgoing audio as pion sees it.
	track *localTrack

	// Negotiation (session lock).
	offerCodecs  []string // the codecs of our pending offer; nil when we answered
	neg          sdp.Negotiated
	negotiated   bool
	negotiatedAt time.Time
	allowedPT    [2]uint64

	recv *rtpstats.Receiver
	send *rtpstats.Sender
	out  *endpoint.OutStream
	hdr  rtp.Header // the header being sent

	lastMedia time.Time
	timedOut  bool
	nextRTCP  time.Time
	invalid   uint64

	// Set by pion's goroutines.
	iceState  atomic.Int32 // a pion.ICEConnectionState
	srtpReady atomic.Bool  // DTLS is up: SRTP keys exist and media can flow
	remote    atomic.Pointer[netip.AddrPort]
	reporting atomic.Bool // a state report is on its way to the session loop

	sink atomic.Pointer[sinkBox]
	// deliverMu is held for writing while a transfer moves the leg (suspended is then set;
	// both session-loop only), read-held by each hand-over to the sink.
	deliverMu sync.RWMutex
	suspended bool

	// mu guards closing and the reader count, so no reader starts once Close waits for them.
	mu      sync.Mutex
	closing bool
	readers sync.WaitGroup
	closed  bool
	// closeCh is closed when Close starts: a state report waiting for room in the session's
	// queue gives up then, rather than keep Close (on that session's loop) waiting for it.
	closeCh chan struct{}
}

type sinkBox struct{ s endpoint.Sink }

// New binds the leg's socket and builds its ICE mux. Nothing is negotiated yet: AnswerOffer or
// CreateOffer makes the PeerConnection.
func New(id uuid.UUID, dir endpoint.Direction, opts Options) (*Endpoint, error) {
	if opts.Ports == nil {
		return nil, errors.New("webrtc: no port pool")
	}
	conn, err := opts.Ports.Listen()
	if err != nil {
		return nil, err
	}
	if opts.LoggerFactory == nil {
		f := logging.NewDefaultLoggerFactory()
		f.DefaultLogLevel = logging.LogLevelError
		// A datagram for a connection that just closed is routine on a busy server.
		f.ScopeLevels = map[string]logging.LogLevel{"ice-mux": logging.LogLevelDisabled}
		opts.LoggerFactory = f
	}
	e := &Endpoint{
		id:        id,
		direction: dir,
		state:     endpoint.StateConnecting,
		opts:      opts,
		conn:      conn,
		recv:      rtpstats.NewReceiver(48000),
		closeCh:   make(chan struct{}),
	}
	e.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{
		Logger:  opts.LoggerFactory.NewLogger("ice-mux"),
		UDPConn: conn,
	})
	return e, nil
}

// ID is the endpoint's UUID.
func (e *Endpoint) ID() uuid.UUID { return e.id }

// Type is "webrtc".
func (e *Endpoint) Type() string { return "webrtc" }

// Direction is the routing direction.
func (e *Endpoint) Direction() endpoint.Direction { return e.direction }

// State is the current state.
func (e *Endpoint) State() endpoint.State { return e.state }

// SetState changes the state and reports whether it changed.
func (e *Endpoint) SetState(s endpoint.State) (endpoint.State, bool) {
	old := e.state
	e.state = s
	return old, old != s
}

// RTP is the leg itself: a WebRTC leg speaks encoded RTP.
func (e *Endpoint) RTP() endpoint.RTPMedia { return e }

// PCM is nil.
func (e *Endpoint) PCM() endpoint.PCMMedia { return nil }

// Port is the leg's UDP port (its ICE host candidate).
func (e *Endpoint) Port() int { return e.conn.LocalAddr().(*net.UDPAddr).Port }

// api builds the per-endpoint pion API: ICE-lite on our mux, DTLS passive when answering,
// exactly the codecs given, and no interceptors (RTCP reports come from package rtpstats, as
// on plain RTP legs), so nothing runs per packet that the bridge does not need.
func (e *Endpoint) api(codecs []pion.RTPCodecParameters) (*pion.API, error) {
	me := &pion.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, pion.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register codec %s: %w", c.MimeType, err)
		}
	}
	var se pion.SettingEngine
	se.LoggerFactory = e.opts.LoggerFactory
	se.SetLite(true)
	se.SetICEUDPMux(e.mux)
	ip := e.opts.Ports.MediaIP()
	if ip.Is4() {
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	} else {
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP6})
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A peer that closes its DTLS session has left, but the leg stays until the client removes
	// it: ICE then reports it disconnected and the media timeout fires, as for a vanished peer.
	se.DisableCloseByDTLS(true)
	if err := se.SetAnsweringDTLSRole(pion.DTLSRoleServer); err != nil {
		return nil, err
	}
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se),
		pion.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// newPeerConnection makes the PeerConnection with our audio track on a sendrecv transceiver.
// Our own SDP is always sendrecv; the routing direction never changes it (§13.5).
func (e *Endpoint) newPeerConnection(codecs []pion.RTPCodecParameters) error {
	api, err := e.api(codecs)
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(pion.Configuration{
		BundlePolicy:  pion.BundlePolicyMaxBundle,
		RTCPMuxPolicy: pion.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return fmt.Errorf("create peer connection: %w", err)
	}
	e.pc = pc
	e.track = &localTrack{id: "audio", stream: "rtpbridge-" + e.id.String()}
	tr, err := pc.AddTransceiverFromTrack(e.track, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return fmt.Errorf("add audio transceiver: %w", err)
	}
	e.tr = tr
	enc := tr.Sender().GetParameters().Encodings
	if len(enc) == 0 {
		return errors.New("audio sender has no encoding")
	}
	ssrc := uint32(enc[0].SSRC)
	e.out = endpoint.NewOutStreamSSRC(ssrc, 48000)
	e.send = rtpstats.NewSender(ssrc, 48000)
	pc.OnICEConnectionStateChange(e.onICEState)
	pc.OnConnectionStateChange(e.onConnectionState)
	pc.OnTrack(e.onTrack)
	if !e.startReader() {
		return errors.New("endpoint closed")
	}
	go e.readRTCP(tr.Sender())
	return nil
}

// AnswerOffer answers a peer's WebRTC offer (endpoint.create_from_offer). The answer carries one
// audio codec, the first of prefs (DefaultCodecs when nil) that the offer has, with the offer's
// payload type, and the offer's telephone-event entry of that codec's clock (D12, D13).
func (e *Endpoint) AnswerOffer(raw []byte, prefs []string) ([]byte, error) {
	if err := checkRemote(raw, true); err != nil {
		return nil, err
	}
	offer, err := sdp.Parse(raw)
	if err != nil {
		return nil, err
	}
	if prefs == nil {
		prefs = DefaultCodecs
	}
	codec, ok := pick(offer.Codecs, prefs)
	if !ok {
		offered := make([]string, 0, len(offer.Formats))
		for _, f := range offer.Formats {
			offered = append(offered, f.Label())
		}
		return nil, &sdp.NoCommonCodecError{Offered: offered, Supported: prefs}
	}
	te, _ := telephoneEvent(offer.TelephoneEvents, codec.ClockRate)
	params := []pion.RTPCodecParameters{codecParams(codec.Name, codec.PT)}
	if te.PT != 0 {
		params = append(params, teParams(te.PT, te.ClockRate))
	}
	if err := e.newPeerConnection(params); err != nil {
		return nil, err
	}
	e.track.setCodec(codec)
	if err := e.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: string(raw)}); err != nil {
		return nil, fmt.Errorf("WebRTC offer rejected: %w", err)
	}
	if e.tr.Mid() == "" {
		return nil, errors.New("WebRTC offer rejected: its audio section could not be matched")
	}
	answer, err := e.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("create WebRTC answer: %w", err)
	}
	local, err := e.setLocal(answer)
	if err != nil {
		return nil, err
	}
	e.apply(sdp.Negotiated{
		Codec: codec.Name, PayloadType: codec.PT, ClockRate: codec.ClockRate,
		TelephoneEventPT: te.PT, TelephoneEventClock: te.ClockRate,
		RTCPMux: true, RemoteProfile: offer.Profile, RemoteDirection: offer.Direction,
		OpusFEC: codec.Name == sdp.Opus && offer.OpusFEC(codec.PT),
	})
	return local, nil
}

// CreateOffer makes our offer (endpoint.create_offer type webrtc): the codecs of prefs in that
// order (DefaultCodecs when nil) and telephone-event for each clock among them, /8000 at PT 101
// and /48000 at 110 when both are present, else the one entry at 101 (D12, D13).
func (e *Endpoint) CreateOffer(prefs []string) ([]byte, error) {
	if prefs == nil {
		prefs = DefaultCodecs
	}
	var params []pion.RTPCodecParameters
	narrow, wide := false, false
	for _, name := range prefs {
		spec, ok := sdp.LookupCodec(name)
		if !ok {
			return nil, fmt.Errorf("unknown codec %q", name)
		}
		params = append(params, codecParams(spec.Name, spec.PayloadType))
		if spec.ClockRate == 48000 {
			wide = true
		} else {
			narrow = true
		}
	}
	switch {
	case narrow && wide:
		params = append(params, teParams(sdp.TelephoneEventPT, 8000), teParams(sdp.TelephoneEventSecondPT, 48000))
	case wide:
		params = append(params, teParams(sdp.TelephoneEventPT, 48000))
	default:
		params = append(params, teParams(sdp.TelephoneEventPT, 8000))
	}
	if err := e.newPeerConnection(params); err != nil {
		return nil, err
	}
	offer, err := e.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("create WebRTC offer: %w", err)
	}
	local, err := e.setLocal(offer)
	if err != nil {
		return nil, err
	}
	e.offerCodecs = prefs
	return local, nil
}

// setLocal applies our description and returns it with its candidate once gathered.
func (e *Endpoint) setLocal(desc pion.SessionDescription) ([]byte, error) {
	gathered := pion.GatheringCompletePromise(e.pc)
	if err := e.pc.SetLocalDescription(desc); err != nil {
		return nil, fmt.Errorf("apply local WebRTC description: %w", err)
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return nil, errors.New("ICE candidate gathering timed out")
	}
	return []byte(e.pc.LocalDescription().SDP), nil
}

// AcceptAnswer applies the peer's answer to our pending offer (endpoint.accept_answer): raw SDP
// or the JSON form {"type":"answer","sdp":"…"} that browsers' RTCSessionDescription serialises to.
func (e *Endpoint) AcceptAnswer(raw []byte, now time.Time) error {
	if e.pc == nil || e.pc.SignalingState() != pion.SignalingStateHaveLocalOffer {
		return errors.New("No pending offer to accept answer for")
	}
	raw, err := unwrapAnswer(raw)
	if err != nil {
		return err
	}
	if err := checkRemote(raw, false); err != nil {
		return err
	}
	answer, err := sdp.Parse(raw)
	if err != nil {
		return err
	}
	codec, ok := pick(answer.Codecs, e.sentCodecs())
	if !ok {
		return errors.New("SDP answer contains no codecs from the original offer")
	}
	te, _ := telephoneEvent(answer.TelephoneEvents, codec.ClockRate)
	e.track.setCodec(codec)
	if err := e.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(raw)}); err != nil {
		return fmt.Errorf("WebRTC answer rejected: %w", err)
	}
	e.apply(sdp.Negotiated{
		Codec: codec.Name, PayloadType: codec.PT, ClockRate: codec.ClockRate,
		TelephoneEventPT: te.PT, TelephoneEventClock: te.ClockRate,
		RTCPMux: true, RemoteProfile: answer.Profile, RemoteDirection: answer.Direction,
		OpusFEC: codec.Name == sdp.Opus && answer.OpusFEC(codec.PT),
	})
	return nil
}

// sentCodecs is the codec list our offers carried: the first offer's, or, after an answer, the
// agreed codec (an ICE-restart re-offer keeps the media as it is).
func (e *Endpoint) sentCodecs() []string {
	if e.offerCodecs != nil {
		return e.offerCodecs
	}
	if e.negotiated {
		return []string{e.neg.Codec}
	}
	return DefaultCodecs
}

// ICERestart makes a new offer with fresh ICE credentials and the same candidate
// (endpoint.ice_restart); the answer comes through AcceptAnswer. Media keeps its codec.
func (e *Endpoint) ICERestart() ([]byte, error) {
	if e.pc == nil {
		return nil, errors.New("WebRTC endpoint has no connection to restart")
	}
	offer, err := e.pc.CreateOffer(&pion.OfferOptions{ICERestart: true})
	if err != nil {
		return nil, fmt.Errorf("ICE restart offer: %w", err)
	}
	return e.setLocal(offer)
}

func (e *Endpoint) apply(neg sdp.Negotiated) {
	if !e.negotiated {
		e.negotiatedAt = time.Now()
	}
	e.neg, e.negotiated = neg, true
	e.offerCodecs = nil
	e.recv.SetClockRate(neg.ClockRate)
	e.send.SetClockRate(neg.ClockRate)
	e.out.SetClock(neg.ClockRate)
	e.allowedPT = [2]uint64{}
	e.allowPT(neg.PayloadType)
	if neg.TelephoneEventPT != 0 {
		e.allowPT(neg.TelephoneEventPT)
	}
}

func (e *Endpoint) allowPT(pt uint8)        { e.allowedPT[pt>>6&1] |= 1 << (pt & 63) }
func (e *Endpoint) ptAllowed(pt uint8) bool { return e.allowedPT[pt>>6&1]&(1<<(pt&63)) != 0 }

// Start hands the leg its session. pion may have connected already (an answer starts ICE at
// once), so the current state is reported now.
func (e *Endpoint) Start(_ *mediaio.Worker, sink endpoint.Sink) error {
	e.sink.Store(&sinkBox{s: sink})
	e.report()
	return nil
}

// Suspend implements endpoint.Mover: no datagram reaches the old session once it returns (a
// hand-over in progress finishes first); the PeerConnection, its ICE, DTLS and SRTP state and
// the outgoing stream stay as they are.
func (e *Endpoint) Suspend() {
	e.deliverMu.Lock()
	e.suspended = true
}

// Resume implements endpoint.Mover: datagrams go to sink, the new session, and the current ICE
// state is reported to it. The worker and lease are unused: pion reads the socket and the
// leg keeps its own buffers.
func (e *Endpoint) Resume(_ *mediaio.Worker, sink endpoint.Sink, _ *endpoint.Lease) error {
	if !e.suspended {
		return errors.New("webrtc: resume without suspend")
	}
	e.out.Rebase()
	e.sink.Store(&sinkBox{s: sink})
	e.suspended = false
	e.deliverMu.Unlock()
	e.reporting.Store(false) // a report in flight went to the old session
	e.report()
	return nil
}

var _ endpoint.Mover = (*Endpoint)(nil)

// Close tears the PeerConnection down, closes the socket and waits for the leg's readers.
// It is called once, under the session's lock; pion's close is bounded by its own timeouts.
func (e *Endpoint) Close() {
	if e.closed {
		return
	}
	if e.suspended {
		// Closed while moving (a failed transfer whose sessions both went): readers blocked
		// in deliver must get through to see the leg closing.
		e.sink.Store(nil)
		e.suspended = false
		e.deliverMu.Unlock()
	}
	e.closed = true
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	close(e.closeCh)
	if e.pc != nil {
		_ = e.pc.GracefulClose()
	}
	_ = e.mux.Close()
	e.readers.Wait()
}

// startReader counts a reader goroutine in, unless the leg is closing.
func (e *Endpoint) startReader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.readers.Add(1)
	return true
}

func (e *Endpoint) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// onTrack runs on the goroutine pion starts for the peer's audio: it reads decrypted RTP until
// the connection closes, and starts the reader of the peer's RTCP.
func (e *Endpoint) onTrack(track *pion.TrackRemote, recv *pion.RTPReceiver) {
	if track.Kind() != pion.RTPCodecTypeAudio || !e.startReader() {
		return
	}
	defer e.readers.Done()
	if e.startReader() {
		go e.readReceiverRTCP(recv)
	}
	var buf [readBufferSize]byte
	failures := 0
	for {
		n, _, err := track.Read(buf[:])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || e.isClosing() {
				return
			}
			// A payload type outside the negotiated set: pion says so, Receive drops it. A
			// stream that only fails (closed in a way pion reports otherwise) ends the reader.
			if n <= 0 {
				if failures++; failures > maxReadFailures {
					return
				}
				continue
			}
		}
		failures = 0
		e.deliver(buf[:n], false)
	}
}

// readRTCP reads the RTCP pion routes to our sender (the peer's reports on our stream).
// It owns one reader count, taken by the caller.
func (e *Endpoint) readRTCP(s *pion.RTPSender) {
	defer e.readers.Done()
	var buf [readBufferSize]byte
	for {
		n, _, err := s.Read(buf[:])
		if err != nil {
			return
		}
		e.deliver(buf[:n], true)
	}
}

// readReceiverRTCP reads the RTCP pion routes to our receiver (the peer's sender reports).
func (e *Endpoint) readReceiverRTCP(r *pion.RTPReceiver) {
	defer e.readers.Done()
	var buf [readBufferSize]byte
	for {
		n, _, err := r.Read(buf[:])
		if err != nil {
			return
		}
		e.deliver(buf[:n], true)
	}
}

func (e *Endpoint) deliver(b []byte, rtcpPacket bool) {
	// A transfer holds the write side while the leg changes sessions (Suspend … Resume):
	// pion keeps what arrives meanwhile in its own buffers.
	e.deliverMu.RLock()
	defer e.deliverMu.RUnlock()
	box := e.sink.Load()
	if box == nil {
		return
	}
	var src netip.AddrPort
	if r := e.remote.Load(); r != nil {
		src = *r
	}
	box.s.Packet(e, b, src, time.Now(), rtcpPacket)
}

// onICEState runs on pion's ICE goroutine: it must not block, so it only records the state and
// makes sure one report is on its way to the session loop.
func (e *Endpoint) onICEState(st pion.ICEConnectionState) {
	e.iceState.Store(int32(st))
	if st == pion.ICEConnectionStateConnected {
		e.rememberRemote()
	}
	e.report()
}

func (e *Endpoint) onConnectionState(st pion.PeerConnectionState) {
	switch st {
	case pion.PeerConnectionStateConnected:
		e.srtpReady.Store(true)
	case pion.PeerConnectionStateClosed, pion.PeerConnectionStateFailed:
		e.srtpReady.Store(false)
	}
}

func (e *Endpoint) rememberRemote() {
	pair, err := e.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil {
		return
	}
	if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil {
		ap := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
		e.remote.Store(&ap)
	}
}

// report posts the latest ICE state to the session loop, at most one report in flight. The
// post runs on a goroutine of the leg's own (Post may wait for room), counted with the readers.
func (e *Endpoint) report() {
	box := e.sink.Load()
	if box == nil || !e.reporting.CompareAndSwap(false, true) {
		return
	}
	if !e.startReader() {
		return
	}
	go func() {
		defer e.readers.Done()
		fn := func() { e.reporting.Store(false); e.applyICEState(box.s) }
		var posted bool
		if pc, ok := box.s.(endpoint.PostCanceler); ok {
			posted = pc.PostUnless(e.closeCh, fn)
		} else {
			posted = box.s.Post(fn)
		}
		if !posted {
			e.reporting.Store(false)
		}
	}()
}

// applyICEState maps ICE onto the endpoint state machine (§10): connected on ICE connected or
// completed, disconnected when ICE loses the peer, connected again when it recovers. Session
// loop only.
func (e *Endpoint) applyICEState(sink endpoint.Sink) {
	if e.closed {
		return
	}
	var want endpoint.State
	switch pion.ICEConnectionState(e.iceState.Load()) {
	case pion.ICEConnectionStateConnected, pion.ICEConnectionStateCompleted:
		want = endpoint.StateConnected
	case pion.ICEConnectionStateDisconnected, pion.ICEConnectionStateFailed:
		if e.state != endpoint.StateConnected {
			return
		}
		want = endpoint.StateDisconnected
	default:
		return
	}
	sink.SetState(e, want)
}

// Negotiated is the outcome of the SDP exchange.
func (e *Endpoint) Negotiated() (sdp.Negotiated, bool) { return e.neg, e.negotiated }

// Codec is the send codec's name, "" before negotiation.
func (e *Endpoint) Codec() string {
	if !e.negotiated {
		return ""
	}
	return e.neg.Codec
}

// CanSend reports whether media can be sent: a codec agreed and DTLS-SRTP up.
func (e *Endpoint) CanSend() bool {
	return e.negotiated && !e.closed && e.srtpReady.Load() && e.track.writer() != nil
}

// Out is the leg's outgoing stream, on the SSRC its SDP announced.
func (e *Endpoint) Out() *endpoint.OutStream { return e.out }

// Receiver exposes inbound statistics.
func (e *Endpoint) Receiver() *rtpstats.Receiver { return e.recv }

// Sender exposes outbound statistics.
func (e *Endpoint) Sender() *rtpstats.Sender { return e.send }

// LastMedia is when the last valid inbound media arrived.
func (e *Endpoint) LastMedia() time.Time { return e.lastMedia }

// MediaExpectedSince is when the SDP exchange completed.
func (e *Endpoint) MediaExpectedSince() time.Time { return e.negotiatedAt }

// TimedOut reports an ongoing media-timeout outage.
func (e *Endpoint) TimedOut() bool { return e.timedOut }

// SetTimedOut marks or clears the outage.
func (e *Endpoint) SetTimedOut(v bool) { e.timedOut = v }

// Invalid is the number of inbound datagrams dropped as malformed.
func (e *Endpoint) Invalid() uint64 { return e.invalid }

// Receive processes one datagram pion decrypted, under the session's lock: RTP header and
// payload type checks, statistics and media bookkeeping as on plain RTP legs, or RTCP reports.
// The payload aliases b.
func (e *Endpoint) Receive(b []byte, _ netip.AddrPort, at time.Time, rtcpPacket bool, in *endpoint.Inbound) {
	*in = endpoint.Inbound{}
	if rtcpPacket {
		e.receiveRTCP(b, at, in)
		return
	}
	payload, err := rtpnet.ParseRTP(b, &in.Header)
	if err != nil {
		e.invalid++
		in.Invalid = true
		return
	}
	if !e.ptAllowed(in.Header.PayloadType) {
		in.Rejected = true
		return
	}
	e.recv.Update(in.Header.SequenceNumber, in.Header.Timestamp, in.Header.SSRC, len(payload), at)
	in.First = e.lastMedia.IsZero()
	in.Resumed = e.timedOut
	e.timedOut = false
	e.lastMedia = at
	in.Kind, in.Payload = endpoint.InboundMedia, payload
	in.DTMF = e.neg.TelephoneEventPT != 0 && in.Header.PayloadType == e.neg.TelephoneEventPT
}

func (e *Endpoint) receiveRTCP(b []byte, now time.Time, in *endpoint.Inbound) {
	c, err := rtpstats.ParseRTCP(b)
	if err != nil {
		e.invalid++
		in.Invalid = true
		return
	}
	for _, sr := range c.SenderReports {
		e.recv.OnSR(sr.SSRC, sr.NTPTime, now)
	}
	if e.send != nil {
		for _, rb := range c.Reports {
			if rb.SSRC == e.out.SSRC() {
				e.send.OnReportBlock(rb, now)
			}
		}
	}
	// A BYE is not reported for WebRTC legs (§8: rtcp_bye is plain RTP only).
	in.Kind = endpoint.InboundRTCP
}

// SendRTP writes one packet of the session's to pion's SRTP stream, on our SSRC. It returns the
// payload bytes sent, 0 while DTLS is not up.
func (e *Endpoint) SendRTP(h *rtpnet.RTPHeader, payload []byte, now time.Time) (int, error) {
	if !e.CanSend() {
		return 0, nil
	}
	w := e.track.writer()
	e.hdr = rtp.Header{
		Version: 2, Marker: h.Marker, PayloadType: h.PayloadType,
		SequenceNumber: h.SequenceNumber, Timestamp: h.Timestamp, SSRC: e.out.SSRC(),
	}
	if _, err := w.WriteRTP(&e.hdr, payload); err != nil {
		return 0, err
	}
	e.send.OnSent(h.Timestamp, len(payload), now)
	return len(payload), nil
}

// Tick sends the periodic RTCP sender report (loss, jitter and RTT for both sides, D5) and
// re-reports an ICE state whose report could not be posted.
func (e *Endpoint) Tick(now time.Time) {
	if e.closed {
		return
	}
	if box := e.sink.Load(); box != nil && !e.reporting.Load() {
		e.applyICEState(box.s)
	}
	if !e.CanSend() || now.Before(e.nextRTCP) {
		return
	}
	e.nextRTCP = now.Add(rtcpInterval)
	var buf [128]byte
	n, err := rtpstats.BuildSR(buf[:], e.send, e.recv, now)
	if err != nil {
		return
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		return
	}
	_ = e.pc.WriteRTCP(pkts)
}

// pick returns the first codec of prefs that formats has, with the formats' payload type.
func pick(formats []sdp.Format, prefs []string) (sdp.Format, bool) {
	for _, name := range prefs {
		for _, f := range formats {
			if strings.EqualFold(f.Name, name) {
				return f, true
			}
		}
	}
	return sdp.Format{}, false
}

// telephoneEvent returns the telephone-event entry of the given clock.
func telephoneEvent(tes []sdp.Format, clock uint32) (sdp.Format, bool) {
	for _, te := range tes {
		if te.ClockRate == clock {
			return te, true
		}
	}
	return sdp.Format{}, false
}

func mimeType(name string) string {
	switch name {
	case sdp.Opus:
		return pion.MimeTypeOpus
	case sdp.G722:
		return pion.MimeTypeG722
	case sdp.PCMU:
		return pion.MimeTypePCMU
	case sdp.PCMA:
		return pion.MimeTypePCMA
	}
	return "audio/" + name
}

func codecParams(name string, pt uint8) pion.RTPCodecParameters {
	c := pion.RTPCodecParameters{PayloadType: pion.PayloadType(pt)}
	c.MimeType = mimeType(name)
	c.ClockRate = 8000
	if name == sdp.Opus {
		c.ClockRate, c.Channels, c.SDPFmtpLine = 48000, 2, "minptime=10;useinbandfec=1"
	}
	return c
}

func teParams(pt uint8, clock uint32) pion.RTPCodecParameters {
	c := pion.RTPCodecParameters{PayloadType: pion.PayloadType(pt)}
	c.MimeType, c.ClockRate, c.SDPFmtpLine = "audio/telephone-event", clock, "0-16"
	return c
}

// localTrack is our outgoing audio as pion sees it: Bind hands over pion's SRTP write stream,
// which SendRTP writes the session's packets to directly (no payloader, no copy).
type localTrack struct {
	id, stream string
	codec      atomic.Pointer[pion.RTPCodecCapability] // the agreed send codec
	ws         atomic.Pointer[writerBox]
}

type writerBox struct{ w pion.TrackLocalWriter }

// setCodec tells Bind which of the negotiated codecs we send.
func (t *localTrack) setCodec(f sdp.Format) {
	t.codec.Store(&pion.RTPCodecCapability{MimeType: mimeType(f.Name), ClockRate: f.ClockRate})
}

func (t *localTrack) writer() pion.TrackLocalWriter {
	if b := t.ws.Load(); b != nil {
		return b.w
	}
	return nil
}

// Bind is called by pion once negotiation picked the codecs.
func (t *localTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	params := ctx.CodecParameters()
	if len(params) == 0 {
		return pion.RTPCodecParameters{}, pion.ErrUnsupportedCodec
	}
	chosen := params[0]
	if want := t.codec.Load(); want != nil {
		for _, p := range params {
			if strings.EqualFold(p.MimeType, want.MimeType) {
				chosen = p
				break
			}
		}
	}
	t.ws.Store(&writerBox{w: ctx.WriteStream()})
	return chosen, nil
}

// Unbind stops writing.
func (t *localTrack) Unbind(pion.TrackLocalContext) error {
	t.ws.Store(nil)
	return nil
}

func (t *localTrack) ID() string              { return t.id }
func (t *localTrack) RID() string             { return "" }
func (t *localTrack) StreamID() string        { return t.stream }
func (t *localTrack) Kind() pion.RTPCodecType { return pion.RTPCodecTypeAudio }

package endpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/rtpstats"
	"github.com/rtpbridge/rtpbridge/pkg/sdes"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// Scratch is the working memory of packet handling: decrypted inbound packets and outbound
// packets being built and encrypted. Nothing per endpoint or per session scales with the
// datagram size: a session borrows a Scratch from a pool while it holds its lock (see Lease),
// so the few in use stay hot in the CPU's cache.
type Scratch struct {
	clear  [rtpnet.ReadBufferSize]byte // decrypted inbound packet
	cipher [rtpnet.MaxDatagramSize + 64]byte
	send   [rtpnet.MaxDatagramSize]byte
	rtcp   [rtpnet.MaxDatagramSize]byte
	// DTMF is for the session's telephone-event rewriting.
	DTMF [rtpnet.MaxDatagramSize]byte
}

var scratchPool = sync.Pool{New: func() any { return new(Scratch) }}

// Lease is a session's handle on a Scratch: its endpoints read S, which the session fills with
// Borrow when it takes its lock and empties with Return before it lets go.
type Lease struct {
	S *Scratch
}

// Borrow takes a Scratch from the process-wide pool.
func (l *Lease) Borrow() { l.S = scratchPool.Get().(*Scratch) }

// Return gives it back.
func (l *Lease) Return() {
	scratchPool.Put(l.S)
	l.S = nil
}

// Sink is a leg's way to its session, handed to Start.
type Sink interface {
	// Packet takes a datagram a leg's transport received. It runs on the goroutine that read
	// it (a media worker, or the leg's own reader); b is only valid during the call and Packet
	// must not block.
	Packet(from Leg, b []byte, src netip.AddrPort, at time.Time, rtcpSocket bool)
	// Post runs fn on the session loop, under the session's lock, after what is already
	// queued: how a leg's own goroutines (ICE and DTLS, downloads, WebSocket audio) change
	// state or emit events. It waits at most the command timeout for room and reports whether
	// fn was queued; fn never runs once the session has ended.
	Post(fn func()) bool
	// Emit sends an event to the session's client. Only under the session's lock: from Tick,
	// ReadFrame, WriteFrame or a Post'ed fn.
	Emit(event string, data any)
	// SetState changes the leg's state and emits endpoint.state_changed when it changed. Only
	// under the session's lock, like Emit.
	SetState(from Leg, st State)
}

// PostCanceler is a Sink whose Post can be abandoned. A leg whose Close waits for its own
// goroutines uses it: one of them waiting in Post for room in a busy session's queue must
// give up when the leg closes, since that session's loop is the one running Close.
type PostCanceler interface {
	// PostUnless is Post that gives up, reporting false, once cancel is closed.
	PostUnless(cancel <-chan struct{}, fn func()) bool
}

// readBatch is how many datagrams one socket may hand over per worker wake-up before the
// worker turns to its other sockets (fairness between sessions under a flood).
const readBatch = rtpnet.BatchSize

// socketReader reads one of the endpoint's sockets on its media worker.
type socketReader struct {
	e    *RTP
	sock *rtpnet.UDPSocket
	rtcp bool
	reg  *mediaio.Registration
}

// Readable reads up to readBatch datagrams with one system call into the worker's batch and
// hands each over. Anything left makes the socket ready again on the worker's next round.
func (r *socketReader) Readable(batch *rtpnet.ReadBatch) {
	n, err := r.sock.ReadBatch(batch, readBatch)
	if err != nil {
		return // ErrWouldBlock: nothing after all; anything else: the socket is going away
	}
	now := time.Now()
	for i := 0; i < n; i++ {
		b, src := batch.Datagram(i)
		if len(b) > rtpnet.ReadBufferSize {
			b = b[:rtpnet.ReadBufferSize] // still oversized to the classifier
		}
		r.e.sink.Packet(r.e, b, src, now, r.rtcp)
	}
}

// rtcpInterval is PROTOCOL.md §28's RTCP report interval.
const rtcpInterval = 5 * time.Second

// RTP is a plain RTP (optionally SDES-SRTP) leg: an even/odd UDP port pair on media_ip.
type RTP struct {
	id        uuid.UUID
	direction Direction
	state     State
	created   time.Time
	pair      *rtpnet.PortPair
	mediaIP   netip.Addr

	// Negotiation.
	offer        *sdp.OfferState // our pending offer (create_offer, srtp_rekey), until an answer arrives
	offerCrypto  []sdes.Crypto   // the a=crypto lines of that offer
	offerCodecs  []string        // the codec list of our first offer, reused by re-offers
	neg          sdp.Negotiated
	negotiated   bool
	negotiatedAt time.Time // when the first SDP exchange completed
	version      uint64    // o= version of our last SDP

	// srtp is the SDES-SRTP transform; nil on a plain RTP leg.
	srtp *sdes.Transport
	// scratch is the session's lease on packet memory (see Scratch).
	scratch *Lease

	learner *rtpnet.Learner
	recv    *rtpstats.Receiver
	send    *rtpstats.Sender
	out     *OutStream

	lastMedia time.Time // last valid inbound RTP
	timedOut  bool
	nextRTCP  time.Time

	invalid uint64 // datagrams dropped as malformed

	// allowedPT has bit n set when payload type n was negotiated on this leg (the send
	// codec's and telephone-event's): anything else is rejected (D24).
	allowedPT [2]uint64

	sink Sink
	// rtcpSent sees each report sent, in the clear (RTCPObservable); nil when nobody asked.
	rtcpSent func(b []byte, now time.Time)
	readers  [2]socketReader
	closed   bool
}

// NewRTP allocates a port pair for a new leg. Nothing is read until Start. sources says who may
// latch the leg's media source (rtp_source_networks); nil lets any source latch. scratch is the
// session's lease on packet memory, filled whenever the endpoint is used (under the session's
// lock).
func NewRTP(id uuid.UUID, dir Direction, ports *rtpnet.PortAllocator, sources *rtpnet.SourcePolicy, scratch *Lease, now time.Time) (*RTP, error) {
	pair, err := ports.Allocate()
	if err != nil {
		return nil, err
	}
	e := &RTP{
		id:        id,
		direction: dir,
		state:     StateNew,
		created:   now,
		pair:      pair,
		mediaIP:   ports.MediaIP(),
		learner:   rtpnet.NewLearner(sources, now),
		recv:      rtpstats.NewReceiver(8000),
		out:       NewOutStream(8000),
		scratch:   scratch,
		version:   1,
	}
	e.send = rtpstats.NewSender(e.out.SSRC(), 8000)
	return e, nil
}

// ID is the endpoint's UUID.
func (e *RTP) ID() uuid.UUID { return e.id }

// Type is "rtp" (session.info's endpoint_type).
func (e *RTP) Type() string { return "rtp" }

// RTP is the leg itself: a plain RTP leg speaks encoded RTP.
func (e *RTP) RTP() RTPMedia { return e }

// PCM is nil: a plain RTP leg speaks encoded RTP.
func (e *RTP) PCM() PCMMedia { return nil }

// Direction is the routing direction.
func (e *RTP) Direction() Direction { return e.direction }

// State is the current state.
func (e *RTP) State() State { return e.state }

// SetState changes the state and reports whether it changed.
func (e *RTP) SetState(s State) (old State, changed bool) {
	old = e.state
	e.state = s
	return old, old != s
}

// Port is the RTP (even) port.
func (e *RTP) Port() uint16 { return uint16(e.pair.Port()) }

// Negotiated is the outcome of the SDP exchange; ok is false before it completed.
func (e *RTP) Negotiated() (sdp.Negotiated, bool) { return e.neg, e.negotiated }

// Codec is the send codec name, "" before negotiation or when none was agreed.
func (e *RTP) Codec() string {
	if !e.negotiated {
		return ""
	}
	return e.neg.Codec
}

// Remote is where media goes (invalid while unknown).
func (e *RTP) Remote() netip.AddrPort { return e.learner.Remote() }

// CanSend reports whether media can be sent: a codec is agreed and the peer's address known
// (D7: no need to wait for the peer's first packet).
func (e *RTP) CanSend() bool {
	return e.negotiated && e.neg.Codec != "" && e.learner.Remote().IsValid()
}

// Invalid is the number of inbound datagrams dropped as malformed.
func (e *RTP) Invalid() uint64 { return e.invalid }

// Receiver exposes inbound statistics.
func (e *RTP) Receiver() *rtpstats.Receiver { return e.recv }

// Sender exposes outbound statistics (packets, octets, RTT).
func (e *RTP) Sender() *rtpstats.Sender { return e.send }

// Out is the endpoint's outgoing stream.
func (e *RTP) Out() *OutStream { return e.out }

// LastMedia is when the last valid inbound RTP packet arrived (zero if never).
func (e *RTP) LastMedia() time.Time { return e.lastMedia }

// Created is when the endpoint was created.
func (e *RTP) Created() time.Time { return e.created }

// MediaExpectedSince is when media could first have arrived: when the SDP exchange completed.
func (e *RTP) MediaExpectedSince() time.Time { return e.negotiatedAt }

// TimedOut and SetTimedOut track the media-timeout outage (one event per outage).
func (e *RTP) TimedOut() bool { return e.timedOut }

// SetTimedOut marks or clears the outage.
func (e *RTP) SetTimedOut(v bool) { e.timedOut = v }

// SRTP reports whether the leg is SDES-SRTP.
func (e *RTP) SRTP() bool { return e.srtp != nil }

// CreateOffer builds our offer (endpoint.create_offer) and remembers it for accept_answer. With
// srtp it offers every supported suite, each with its own fresh key (PROTOCOL.md §29).
func (e *RTP) CreateOffer(codecs []string, srtp bool) ([]byte, error) {
	var cryptos []sdes.Crypto
	if srtp {
		var err error
		if cryptos, err = sdes.OfferCryptos(); err != nil {
			return nil, fmt.Errorf("SRTP key generation failed: %w", err)
		}
	}
	offer, err := e.buildOffer(codecs, cryptos)
	if err != nil {
		return nil, err
	}
	e.offerCodecs = codecs
	return offer, nil
}

func (e *RTP) buildOffer(codecs []string, cryptos []sdes.Crypto) ([]byte, error) {
	lines := make([]string, len(cryptos))
	for i, c := range cryptos {
		lines[i] = c.String()
	}
	offer, err := sdp.BuildOffer(sdp.OfferParams{
		EndpointID: e.id, Version: e.version, MediaIP: e.mediaIP, Port: e.Port(), Codecs: codecs,
		Crypto: lines, RTCPMux: e.negotiated && e.neg.RTCPMux,
	})
	if err != nil {
		return nil, fmt.Errorf("build offer: %w", err)
	}
	e.offer = &sdp.OfferState{Codecs: codecs, RTCPMux: e.negotiated && e.neg.RTCPMux}
	e.offerCrypto = cryptos
	return offer, nil
}

// AnswerOffer negotiates from a peer's offer (endpoint.create_from_offer) and returns our answer.
// An offer with a=crypto lines (RTP/SAVP, or RTP/AVP with crypto: opportunistic SRTP) is answered
// with the first suite we support and a key of our own, never the offerer's (PROTOCOL.md §15).
func (e *RTP) AnswerOffer(offer *sdp.Description, codecs []string) ([]byte, error) {
	var (
		transport *sdes.Transport
		lines     []string
	)
	if len(offer.Crypto) > 0 {
		peer, err := sdes.SelectAnswer(offer.Crypto)
		if err != nil {
			return nil, err
		}
		ours, err := sdes.AnswerFor(peer)
		if err != nil {
			return nil, err
		}
		if transport, err = newTransport(ours, peer); err != nil {
			return nil, err
		}
		lines = []string{ours.String()}
	} else if offer.Profile.Secure() {
		return nil, fmt.Errorf("offer uses %s without a=crypto; only SDES-keyed SRTP is supported on plain RTP legs", offer.Profile)
	}
	answer, neg, err := sdp.BuildAnswer(offer, sdp.AnswerParams{
		EndpointID: e.id, Version: e.version, MediaIP: e.mediaIP, Port: e.Port(), Codecs: codecs, Crypto: lines,
	})
	if err != nil {
		return nil, err
	}
	e.srtp = transport
	e.apply(neg)
	return answer, nil
}

func newTransport(local, remote sdes.Crypto) (*sdes.Transport, error) {
	t, err := sdes.NewTransport(local)
	if err != nil {
		return nil, err
	}
	if err := t.SetRemote(remote); err != nil {
		return nil, fmt.Errorf("SRTP RX init failed: %w", err)
	}
	return t, nil
}

// AcceptAnswer applies the peer's answer to our pending offer (endpoint.accept_answer). For an
// SRTP offer the answer must accept one of our crypto lines; after a rekey the peer's new key
// becomes the pending receive key (PROTOCOL.md §15).
func (e *RTP) AcceptAnswer(answer *sdp.Description, now time.Time) error {
	if e.offer == nil {
		return errors.New("No pending offer to accept answer for")
	}
	var local, remote sdes.Crypto
	switch {
	case len(e.offerCrypto) > 0:
		var err error
		var reasons []string
		found := false
		for _, line := range answer.Crypto {
			if local, remote, err = sdes.MatchAnswer(e.offerCrypto, line); err == nil {
				found = true
				break
			}
			reasons = append(reasons, err.Error())
		}
		if !found {
			if len(reasons) == 0 {
				return errors.New("SRTP was offered but the answer has no a=crypto line")
			}
			return fmt.Errorf("SRTP answer rejected: %s", reasons[0])
		}
	case e.srtp != nil:
		// Unreachable today (every offer of an SRTP leg carries a=crypto), kept so that no
		// future re-offer path can downgrade a keyed leg (D24).
		return errors.New("SRTP is active on this endpoint; a plain RTP answer would downgrade it")
	case len(answer.Crypto) > 0:
		return errors.New("answer has a=crypto but the offer was plain RTP")
	}
	neg, err := sdp.AcceptAnswer(*e.offer, answer)
	if err != nil {
		return err
	}
	if len(e.offerCrypto) > 0 {
		if e.srtp == nil {
			if e.srtp, err = newTransport(local, remote); err != nil {
				return err
			}
		} else if err := e.srtp.SetPendingRemote(remote, now); err != nil {
			return fmt.Errorf("SRTP RX init failed: %w", err)
		}
	}
	e.offer, e.offerCrypto = nil, nil
	e.apply(neg)
	// An accepted answer opens a learning window (D24): the peer may have moved.
	e.learner.Reopen(now)
	return nil
}

// Rekey starts an SRTP rekey (endpoint.srtp_rekey): a new send key used at once, a new offer
// with it (same codecs and port, o= version incremented) and a reopened learning window.
func (e *RTP) Rekey(now time.Time) ([]byte, error) {
	if e.srtp == nil {
		return nil, errors.New("SRTP is not active on this endpoint")
	}
	key, err := sdes.NewKey(e.srtp.Local().Suite)
	if err != nil {
		return nil, fmt.Errorf("SRTP key generation failed: %w", err)
	}
	if err := e.srtp.Rekey(key); err != nil {
		return nil, err
	}
	codecs := e.offerCodecs
	if e.negotiated && e.neg.Codec != "" {
		codecs = []string{e.neg.Codec}
	}
	e.version++
	offer, err := e.buildOffer(codecs, []sdes.Crypto{key})
	if err != nil {
		return nil, err
	}
	e.learner.Reopen(now)
	return offer, nil
}

func (e *RTP) apply(neg sdp.Negotiated) {
	if !e.negotiated {
		e.negotiatedAt = time.Now()
	}
	e.neg = neg
	e.negotiated = true
	clock := neg.ClockRate
	if clock == 0 {
		clock = 8000
	}
	e.recv.SetClockRate(clock)
	e.send.SetClockRate(clock)
	e.out.SetClock(clock)
	e.learner.SetSignalled(neg.RemoteAddr, neg.RemoteRTCPAddr)
	e.allowedPT = [2]uint64{}
	if neg.Codec != "" {
		e.allowPT(neg.PayloadType)
	}
	if neg.TelephoneEventPT != 0 {
		e.allowPT(neg.TelephoneEventPT)
	}
}

func (e *RTP) allowPT(pt uint8) { e.allowedPT[pt>>6&1] |= 1 << (pt & 63) }

// ptAllowed reports whether pt was negotiated on this leg.
func (e *RTP) ptAllowed(pt uint8) bool { return e.allowedPT[pt>>6&1]&(1<<(pt&63)) != 0 }

// Start registers the endpoint's sockets with a media worker; every datagram they receive
// goes to sink on that worker.
func (e *RTP) Start(w *mediaio.Worker, sink Sink) error {
	e.sink = sink
	e.readers = [2]socketReader{{e: e, sock: e.pair.RTP}, {e: e, sock: e.pair.RTCP, rtcp: true}}
	for i := range e.readers {
		r := &e.readers[i]
		reg, err := w.Register(r.sock.Fd(), r)
		if err != nil {
			e.stopReaders()
			return fmt.Errorf("media socket registration: %w", err)
		}
		r.reg = reg
	}
	return nil
}

// stopReaders removes the sockets from their worker and waits for a read in progress.
func (e *RTP) stopReaders() {
	for i := range e.readers {
		if reg := e.readers[i].reg; reg != nil {
			reg.Remove()
		}
	}
}

// Close stops reading and releases the ports. Safe to call twice. It must not be called from
// the endpoint's own Sink.Packet (it waits for the read in progress to finish).
func (e *RTP) Close() {
	if e.closed {
		return
	}
	e.closed = true
	e.stopReaders()
	_ = e.pair.Close()
}

// InboundKind says what Receive found in a datagram.
type InboundKind uint8

// Inbound kinds.
const (
	InboundDrop  InboundKind = iota // invalid, or nothing for the session to do
	InboundMedia                    // an RTP packet for routing
	InboundRTCP                     // an RTCP compound was processed
)

// Inbound is the result of Receive, filled into caller-owned memory.
type Inbound struct {
	Kind    InboundKind
	Header  rtpnet.RTPHeader
	Payload []byte        // RTP: the payload; RTCP: the whole compound, decrypted
	DTMF    bool          // the payload type is the negotiated telephone-event
	Bye     *rtpstats.Bye // a BYE in the RTCP compound
	First   bool          // the first valid RTP packet ever
	Resumed bool          // media after a media-timeout outage
	Invalid bool          // the datagram was malformed and dropped
	// Rejected is set when a well-formed packet was dropped for its source (not the latched
	// one, or not allowed to latch) or its payload type (not negotiated on this leg), D24.
	Rejected bool
	// SRTPError is set when an SRTP/SRTCP packet failed authentication or replay checks.
	SRTPError bool
}

// Receive processes one datagram under the session's lock: classification, source and payload
// type checks, SRTP, header parsing, statistics, symmetric-RTP learning, RTCP. The payload
// aliases b or the session's scratch: use it before the next packet.
func (e *RTP) Receive(b []byte, src netip.AddrPort, at time.Time, rtcpSocket bool, in *Inbound) {
	*in = Inbound{}
	var kind rtpnet.Kind
	if rtcpSocket {
		kind = rtpnet.ClassifyRTCPSocket(b)
	} else {
		kind = rtpnet.Classify(b, e.negotiated && e.neg.RTCPMux)
	}
	switch kind {
	case rtpnet.KindRTP:
		// The source is checked before anything else: a foreign packet must not reach the SRTP
		// replay window, the statistics or the learner (D24).
		verdict := e.learner.CheckRTP(src, at)
		if verdict == rtpnet.Reject {
			in.Rejected = true
			return
		}
		if e.srtp != nil {
			if e.reflected(b, 8) {
				in.SRTPError = true
				return
			}
			// UnprotectRTP's output is the one point where the clear packet exists: recording
			// and VAD taps read the payload returned below.
			clear, err := e.srtp.UnprotectRTP(e.scratch.S.clear[:0], b)
			if err != nil {
				in.SRTPError = true
				return
			}
			b = clear
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
		if verdict == rtpnet.Learn {
			e.learner.CommitRTP(src, at)
		}
		e.recv.Update(in.Header.SequenceNumber, in.Header.Timestamp, in.Header.SSRC, len(payload), at)
		in.First = e.lastMedia.IsZero()
		in.Resumed = e.timedOut
		e.timedOut = false
		e.lastMedia = at
		in.Kind, in.Payload = InboundMedia, payload
		in.DTMF = e.isTelephoneEvent(in.Header.PayloadType)
	case rtpnet.KindRTCP:
		e.receiveRTCP(b, src, at, in)
	default:
		// Malformed, and STUN or DTLS, which a plain RTP leg never speaks: all counted.
		e.invalid++
		in.Invalid = true
	}
}

// reflected reports whether an inbound SRTP (ssrcAt 8) or SRTCP (ssrcAt 4) packet carries our
// own sending SSRC. Such a packet is our own, sent back to us: when the peer echoed our key it
// would authenticate, so it is dropped before decryption whatever the keys (issue 11).
func (e *RTP) reflected(b []byte, ssrcAt int) bool {
	return len(b) >= ssrcAt+4 && binary.BigEndian.Uint32(b[ssrcAt:]) == e.out.SSRC()
}

// SharedSRTPKey reports whether the peer uses our own SDES key for its direction too.
func (e *RTP) SharedSRTPKey() bool { return e.srtp != nil && e.srtp.SharedKey() }

// isTelephoneEvent classifies DTMF packets (PROTOCOL.md §16). Only negotiated payload types get
// this far (D24), so it is the negotiated telephone-event PT and nothing else.
func (e *RTP) isTelephoneEvent(pt uint8) bool {
	return e.neg.TelephoneEventPT != 0 && pt == e.neg.TelephoneEventPT
}

func (e *RTP) receiveRTCP(b []byte, src netip.AddrPort, now time.Time, in *Inbound) {
	verdict := e.learner.CheckRTCP(src, now)
	if verdict == rtpnet.Reject {
		in.Rejected = true
		return
	}
	if e.srtp != nil {
		if e.reflected(b, 4) {
			in.SRTPError = true
			return
		}
		clear, err := e.srtp.UnprotectRTCP(e.scratch.S.clear[:0], b)
		if err != nil {
			in.SRTPError = true
			return
		}
		b = clear
	}
	c, err := rtpstats.ParseRTCP(b)
	if err != nil {
		e.invalid++
		in.Invalid = true
		return
	}
	if verdict == rtpnet.Learn {
		e.learner.CommitRTCP(src, now)
	}
	for _, sr := range c.SenderReports {
		e.recv.OnSR(sr.SSRC, sr.NTPTime, now)
	}
	for _, rb := range c.Reports {
		if rb.SSRC == e.out.SSRC() {
			e.send.OnReportBlock(rb, now)
		}
	}
	in.Kind, in.Bye, in.Payload = InboundRTCP, c.Bye, b
}

// ObserveRTCP registers fn to see every RTCP report the leg sends, before encryption
// (RTCPObservable).
func (e *RTP) ObserveRTCP(fn func(b []byte, now time.Time)) { e.rtcpSent = fn }

// SendRTP sends one RTP packet with the given header (SSRC is ours) and payload to the peer.
// It returns the number of payload bytes sent, 0 when the peer is unknown.
func (e *RTP) SendRTP(h *rtpnet.RTPHeader, payload []byte, now time.Time) (int, error) {
	remote := e.learner.Remote()
	if !remote.IsValid() || e.closed {
		return 0, nil
	}
	h.SSRC = e.out.SSRC()
	buf := e.scratch.S.send[:]
	n, _ := rtpnet.PutRTPHeader(buf, h)
	if n+len(payload) > len(buf) {
		return 0, fmt.Errorf("rtp packet of %d bytes too large", n+len(payload))
	}
	n += copy(buf[n:], payload)
	pkt := buf[:n]
	if e.srtp != nil {
		var err error
		if pkt, err = e.srtp.ProtectRTP(e.scratch.S.cipher[:0], pkt); err != nil {
			return 0, err
		}
	}
	if err := e.pair.RTP.WriteTo(pkt, remote); err != nil {
		return 0, err
	}
	e.send.OnSent(h.Timestamp, len(payload), now)
	return len(payload), nil
}

// Tick sends the periodic RTCP report when it is due: every 5 s once the peer's address is known
// (D7); the report block on the peer's stream is included once its SSRC is known (§14).
func (e *RTP) Tick(now time.Time) {
	if !e.negotiated || !e.learner.Remote().IsValid() || e.closed {
		return
	}
	if now.Before(e.nextRTCP) {
		return
	}
	e.nextRTCP = now.Add(rtcpInterval)
	n, err := rtpstats.BuildSR(e.scratch.S.rtcp[:], e.send, e.recv, now)
	if err != nil {
		return
	}
	pkt := e.scratch.S.rtcp[:n]
	if e.rtcpSent != nil {
		e.rtcpSent(pkt, now)
	}
	if e.srtp != nil {
		if pkt, err = e.srtp.ProtectRTCP(e.scratch.S.cipher[:0], pkt); err != nil {
			return
		}
	}
	mux := e.neg.RTCPMux
	sock := e.pair.RTCP
	if mux {
		sock = e.pair.RTP
	}
	if to := e.learner.RTCPRemote(mux); to.IsValid() {
		_ = sock.WriteTo(pkt, to)
	}
}

package endpoint

import (
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/rtpstats"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// Leg is an endpoint as its session sees it: identity, routing direction and state, lifecycle
// and timers, and the media it speaks. The session's routing, ticks, stats and session.info use
// only this and the media interfaces below; they ask a leg what it speaks, never which kind it
// is, so WebRTC, file, tone, bridge and WebSocket legs plug in beside plain RTP.
//
// Every method but Start's readers runs under the session's lock.
type Leg interface {
	ID() uuid.UUID
	// Type is the endpoint_type of session.info ("rtp", …).
	Type() string
	Direction() Direction
	State() State
	SetState(s State) (old State, changed bool)
	// Start connects the leg's transport (sockets to a media worker); received packets go to
	// sink. Close stops it and releases everything; it is called once the leg is done.
	Start(w *mediaio.Worker, sink Sink) error
	Close()
	// Tick runs the leg's periodic work (RTCP reports); the session calls it on its timer.
	Tick(now time.Time)
	// RTP is the leg's encoded-RTP media (plain RTP, WebRTC), nil for a leg that speaks PCM
	// frames.
	RTP() RTPMedia
	// PCM is the leg's PCM-frame media (file, tone, bridge, WebSocket audio), nil for a leg
	// that speaks encoded RTP. Exactly one of RTP and PCM is non-nil.
	PCM() PCMMedia
}

// FrameDuration is the length of every PCM frame a session exchanges with PCM legs and of its
// media clock's tick, in milliseconds.
const FrameDuration = 20

// FrameSamples is the number of samples of one 20 ms frame at rate Hz.
func FrameSamples(rate int) int { return rate * FrameDuration / 1000 }

// PCMMedia is audio as 20 ms frames of 16-bit mono PCM at the leg's native rate. The session
// decodes, resamples, mixes and encodes around it: a PCM leg never sees a codec.
//
// Its methods run under the session's lock (on the session loop, or on the clock shard that
// produces the session's frames), so they must not block: a
// leg that reads a disk, a network or a WebSocket does it on its own goroutine and hands
// frames over through a buffer of its own.
type PCMMedia interface {
	// Rate is the sample rate of the leg's frames in Hz: its native rate, or the one the
	// session selected (RateSelector). It may change otherwise only while the leg is not a
	// routing member (a URL file learns its rate while buffering); the session follows it then.
	Rate() int
	// ReadFrame is called on the session's media clock, once per 20 ms, while the leg's
	// direction sends: it fills frame (FrameSamples(Rate()) samples) with the leg's next 20 ms
	// and returns true, or returns false when it has nothing to send right now (paused,
	// finished, an input buffer that ran dry). Nothing is routed for a false frame.
	ReadFrame(frame []int16, now time.Time) bool
	// WriteFrame takes the next 20 ms routed to the leg (one source's audio or the mix of
	// several), FrameSamples(Rate()) samples at Rate(); frame is only valid during the call.
	// It is called only while the leg's direction receives and something feeds it.
	WriteFrame(frame []int16, now time.Time)
}

// RateSelector is a PCM leg that can hand out its frames at another rate than its own, doing
// the conversion once for every leg that shares its audio: a shared file stream resamples
// once per rate for all of its subscribers, where each session would otherwise run a
// resampler of its own (PROTOCOL.md §18, D18).
type RateSelector interface {
	// SelectRate asks for frames at rate from the next ReadFrame on, and returns the rate the
	// leg will produce: rate, or the leg's native rate when it cannot convert to rate.
	SelectRate(rate int) int
	// NativeRate is the rate of the leg's audio before any conversion.
	NativeRate() int
}

// RTPMedia is encoded RTP media: a negotiated codec with its payload types and
// telephone-event, one outgoing stream, inbound packets with statistics, and media-timeout
// bookkeeping.
type RTPMedia interface {
	// Codec is the send codec's name, "" while none is agreed.
	Codec() string
	// Negotiated is the outcome of the SDP exchange; ok is false before it completed.
	Negotiated() (n sdp.Negotiated, ok bool)
	// CanSend reports whether media can be sent now.
	CanSend() bool
	// SendRTP sends one packet on the leg's own stream (its SSRC); 0 bytes when it cannot.
	SendRTP(h *rtpnet.RTPHeader, payload []byte, now time.Time) (int, error)
	// Out is the leg's outgoing stream numbering (D14).
	Out() *OutStream
	// Receive processes one datagram read from the leg's sockets.
	Receive(b []byte, src netip.AddrPort, at time.Time, rtcpSocket bool, in *Inbound)
	Receiver() *rtpstats.Receiver
	Sender() *rtpstats.Sender
	// LastMedia is when the last valid inbound media arrived (zero if never);
	// MediaExpectedSince is when media could first have arrived.
	LastMedia() time.Time
	MediaExpectedSince() time.Time
	// TimedOut and SetTimedOut track one media-timeout outage.
	TimedOut() bool
	SetTimedOut(v bool)
}

var _ Leg = (*RTP)(nil)
var _ RTPMedia = (*RTP)(nil)

// Relay is implemented by legs that carry another session's audio (session bridges). Relays
// are never routed to each other, so audio cannot circle between sessions (PROTOCOL.md §11).
type Relay interface {
	Relay() bool
}

// CodecDescriber is implemented by PCM legs that name a codec in session.info and stats
// (a bridge is "L16/48000", §4); legs without it show none.
type CodecDescriber interface {
	CodecName() string
}

// RTCPObservable is implemented by legs that send RTCP reports of their own (plain RTP): the
// session registers fn to see each report as sent, before encryption, for its packet taps
// (PCAP recording, PROTOCOL.md §17). fn runs under the session's lock and must not keep b.
type RTCPObservable interface {
	ObserveRTCP(fn func(b []byte, now time.Time))
}

// MediaWatcher is media-timeout bookkeeping (PROTOCOL.md §8): RTP media has it (RTPMedia), and
// PCM legs that carry a peer's audio (bridges) implement it too.
type MediaWatcher interface {
	// LastMedia is when media last arrived (zero if never).
	LastMedia() time.Time
	// MediaExpectedSince is when media could first have arrived; zero while none is expected.
	MediaExpectedSince() time.Time
	// TimedOut and SetTimedOut track one outage: the event is sent once, re-armed when media
	// resumes.
	TimedOut() bool
	SetTimedOut(v bool)
}

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

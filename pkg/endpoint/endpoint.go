// Package endpoint implements rtpbridge's legs (see Leg). An endpoint owns its transport
// (sockets, SRTP, RTCP, statistics, source latching) and its outgoing stream; its session decides
// what it sends (routing, transcoding, mixing). Its sockets are read by a shared media worker
// (package mediaio); everything else runs under its session's lock.
package endpoint

import "fmt"

// Direction is the routing direction of an endpoint, seen from the session (PROTOCOL.md §4):
// sendonly endpoints contribute media but are sent nothing; recvonly endpoints are sent media
// but their inbound media is not forwarded.
type Direction string

// Directions.
const (
	SendRecv Direction = "sendrecv"
	RecvOnly Direction = "recvonly"
	SendOnly Direction = "sendonly"
)

// UnmarshalText accepts exactly the three protocol values, so a bad value is INVALID_PARAMS.
func (d *Direction) UnmarshalText(b []byte) error {
	switch v := Direction(b); v {
	case SendRecv, RecvOnly, SendOnly:
		*d = v
		return nil
	}
	return fmt.Errorf("unknown direction %q, expected one of sendrecv, recvonly, sendonly", b)
}

// Sends reports whether media from this endpoint is forwarded to others.
func (d Direction) Sends() bool { return d != RecvOnly }

// Receives reports whether this endpoint is sent media.
func (d Direction) Receives() bool { return d != SendOnly }

// State is an endpoint state (PROTOCOL.md §4).
type State string

// States.
const (
	StateNew          State = "new"
	StateBuffering    State = "buffering"
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StatePlaying      State = "playing"
	StatePaused       State = "paused"
	StateDisconnected State = "disconnected"
	StateFinished     State = "finished"
)

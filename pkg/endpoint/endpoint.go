// Package endpoint implements rtpbridge's legs. An endpoint owns its transport (sockets, reader
// goroutines, SRTP, RTCP, statistics, symmetric-RTP learning) and its outgoing stream; the
// session loop owns the endpoint and decides what it sends (routing, transcoding, mixing).
// Apart from the reader goroutines, an endpoint is used from the session loop only.
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

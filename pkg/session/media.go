package session

import (
	"net/netip"
	"time"
)

// MediaOptions is what endpoints need from the server configuration.
type MediaOptions struct {
	// MediaIP is the address media sockets bind and SDP advertises.
	MediaIP netip.Addr
	// RTPPortRange is the inclusive range plain RTP port pairs come from.
	RTPPortRange [2]int
	// MaxEndpoints limits endpoints per session; 0 means unlimited.
	MaxEndpoints int
	// MaxSDPBytes rejects larger SDP bodies.
	MaxSDPBytes int
	// MediaTimeout raises endpoint.media_timeout after that long without media.
	MediaTimeout time.Duration
	// TranscodeCacheSize bounds the per-session transcoder LRU.
	TranscodeCacheSize int
	// OpusComplexity is the libopus encoder complexity (0-10).
	OpusComplexity int
}

// mediaEvent is something an endpoint's goroutine reports to the session loop.
type mediaEvent struct {
	fn func(s *Session)
}

// mediaState is the media half of a session: endpoints, routing and their timers. It is owned
// by the session loop.
type mediaState struct {
	s      *Session
	events chan mediaEvent
}

func newMediaState(s *Session) *mediaState {
	return &mediaState{s: s, events: make(chan mediaEvent, 256)}
}

func (s *Session) handleMediaEvent(ev mediaEvent) { ev.fn(s) }

func (m *mediaState) tick(now time.Time) {}

func (m *mediaState) close() {}

// endpointInfos lists the endpoints for session.info and GET /sessions/{id}.
func (m *mediaState) endpointInfos() []any { return []any{} }

// lookupMediaMethod resolves endpoint, stats, recording and VAD methods.
func lookupMediaMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

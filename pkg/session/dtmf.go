package session

import (
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

// onDTMFPacket sees every telephone-event packet a leg receives, before it is forwarded
// (RFC 4733 detection, PROTOCOL.md §16).
func (m *mediaState) onDTMFPacket(l *leg, in *endpoint.Inbound, now time.Time) {}

// audioPaused reports whether audio to dst is held back now (a digit being injected into it,
// §16), so the far end never hears a tone and an event at once.
func (m *mediaState) audioPaused(dst *leg, now time.Time) bool { return false }

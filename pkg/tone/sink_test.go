package tone

import (
	"net/netip"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

// recorder is an endpoint.Sink that records the events a leg emits (tests run the leg on
// their own goroutine, as the session loop would).
type recorder struct{ events []string }

func (r *recorder) Packet(endpoint.Leg, []byte, netip.AddrPort, time.Time, bool) {}
func (r *recorder) Post(fn func()) bool                                          { fn(); return true }
func (r *recorder) Emit(event string, _ any)                                     { r.events = append(r.events, event) }
func (r *recorder) SetState(l endpoint.Leg, st endpoint.State)                   { l.SetState(st) }

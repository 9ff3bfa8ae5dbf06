package session

import (
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// MediaOptions is what endpoints need from the server configuration.
type MediaOptions struct {
	// Ports hands out plain RTP port pairs; shared by every session.
	Ports *rtpnet.PortAllocator
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

// packetQueueSize is PROTOCOL.md §28's inbound packet queue of a session.
const packetQueueSize = 256

// mediaEvent is something an endpoint's goroutine reports to the session loop.
type mediaEvent struct {
	fn func(s *Session)
}

// leg is one endpoint of the session with the session's bookkeeping about it.
type leg struct {
	ep    *endpoint.RTP
	index uint32 // per-session number, part of the source identity of its streams
}

// route is one (source → destination) edge of the routing table.
type route struct {
	dst *leg
}

// mediaState is the media half of a session: endpoints, routing and their timers. It is owned
// by the session loop.
type mediaState struct {
	s       *Session
	opts    *MediaOptions
	events  chan mediaEvent
	packets chan *endpoint.Datagram

	legs      []*leg // creation order
	byID      map[uuid.UUID]*leg
	byEP      map[*endpoint.RTP]*leg
	routes    map[*leg][]route
	nextIndex uint32

	statsEvery time.Duration
	statsTimer *time.Timer

	in endpoint.Inbound // scratch for the packet path
}

func newMediaState(s *Session) *mediaState {
	return &mediaState{
		s:       s,
		opts:    &s.mgr.opts.Media,
		events:  make(chan mediaEvent, 16),
		packets: make(chan *endpoint.Datagram, packetQueueSize),
		byID:    make(map[uuid.UUID]*leg),
		byEP:    make(map[*endpoint.RTP]*leg),
		routes:  make(map[*leg][]route),
	}
}

func (s *Session) handleMediaEvent(ev mediaEvent) { ev.fn(s) }

// deliver is called by endpoint readers; it never blocks (a full queue drops the packet).
func (m *mediaState) deliver(d *endpoint.Datagram) bool {
	select {
	case m.packets <- d:
		return true
	default:
		return false
	}
}

// statsC is the stats subscription's timer channel (nil when unsubscribed).
func (m *mediaState) statsC() <-chan time.Time {
	if m.statsTimer == nil {
		return nil
	}
	return m.statsTimer.C
}

// add registers a new endpoint, starts its readers and rebuilds routing.
func (m *mediaState) add(ep *endpoint.RTP, now time.Time) *leg {
	m.nextIndex++
	l := &leg{ep: ep, index: m.nextIndex}
	m.legs = append(m.legs, l)
	m.byID[ep.ID()] = l
	m.byEP[ep] = l
	ep.Start(m.deliver)
	m.s.mgr.metrics.EndpointsTotal.Inc()
	m.s.mgr.metrics.EndpointsActive.Inc()
	m.s.endpointsChanged(len(m.legs), now)
	m.rebuild()
	return l
}

// remove closes an endpoint and rebuilds routing.
func (m *mediaState) remove(l *leg, now time.Time) {
	l.ep.Close()
	delete(m.byID, l.ep.ID())
	delete(m.byEP, l.ep)
	for i, x := range m.legs {
		if x == l {
			m.legs = append(m.legs[:i], m.legs[i+1:]...)
			break
		}
	}
	m.s.mgr.metrics.EndpointsActive.Dec()
	m.s.endpointsChanged(len(m.legs), now)
	m.rebuild()
}

// full reports whether max_endpoints_per_session is reached.
func (m *mediaState) full() bool {
	return m.opts.MaxEndpoints > 0 && len(m.legs) >= m.opts.MaxEndpoints
}

// rebuild recomputes the routing table (PROTOCOL.md §11): every member that sends is routed to
// every other member that receives. A leg is a member once its SDP exchange is complete (D7).
func (m *mediaState) rebuild() {
	clear(m.routes)
	for _, src := range m.legs {
		if _, ok := src.ep.Negotiated(); !ok || !src.ep.Direction().Sends() {
			continue
		}
		var rs []route
		for _, dst := range m.legs {
			if dst == src || !dst.ep.Direction().Receives() {
				continue
			}
			if _, ok := dst.ep.Negotiated(); !ok {
				continue
			}
			rs = append(rs, route{dst: dst})
		}
		m.routes[src] = rs
	}
}

// handlePacket is the per-packet path: receive, update state, route. It allocates nothing.
func (m *mediaState) handlePacket(d *endpoint.Datagram) {
	ep := d.From
	l, ok := m.byEP[ep]
	if !ok {
		ep.Release(d) // the endpoint was removed while the packet waited
		return
	}
	now := d.At
	m.s.touch(now)
	in := &m.in
	ep.Receive(d, in)
	if in.Invalid {
		m.s.mgr.metrics.PacketsInvalid.Inc()
	}
	switch in.Kind {
	case endpoint.InboundMedia:
		if st := ep.State(); st == endpoint.StateNew || st == endpoint.StateDisconnected {
			m.setState(l, endpoint.StateConnected)
		}
		if ep.Direction().Sends() {
			m.route(l, in, now)
		}
	case endpoint.InboundRTCP:
		if in.Bye != nil {
			m.s.emit(protocol.EventRTCPBye, map[string]any{
				"endpoint_id": ep.ID().String(), "ssrc_list": in.Bye.SSRCs, "reason": in.Bye.Reason,
			})
		}
	}
	ep.Release(d)
}

// route forwards one inbound packet to every destination of its source.
func (m *mediaState) route(src *leg, in *endpoint.Inbound, now time.Time) {
	srcNeg, _ := src.ep.Negotiated()
	key := uint64(src.index)<<32 | uint64(in.Header.SSRC)
	for _, r := range m.routes[src] {
		dst := r.dst.ep
		if !dst.CanSend() {
			continue
		}
		dstNeg, _ := dst.Negotiated()
		var h rtpnet.RTPHeader
		if in.DTMF {
			// Telephone-event is remapped, never transcoded (§16).
			if dstNeg.TelephoneEventPT == 0 {
				continue
			}
			h.PayloadType = dstNeg.TelephoneEventPT
		} else {
			if srcNeg.Codec != dstNeg.Codec {
				continue // different codecs need a transcoding pipeline
			}
			h.PayloadType = dstNeg.PayloadType
		}
		h.SequenceNumber, h.Timestamp, h.Marker = dst.Out().Map(key, in.Header.SequenceNumber, in.Header.Timestamp, in.Header.Marker, now)
		n, err := dst.SendRTP(&h, in.Payload, now)
		if err == nil && n > 0 && !in.DTMF {
			m.s.mgr.metrics.PacketsRouted.Inc()
		}
	}
}

// setState changes an endpoint's state and tells the client.
func (m *mediaState) setState(l *leg, st endpoint.State) {
	if old, changed := l.ep.SetState(st); changed {
		m.s.emit(protocol.EventEndpointStateChanged, map[string]string{
			"endpoint_id": l.ep.ID().String(), "old_state": string(old), "new_state": string(st),
		})
	}
}

// tick runs the per-endpoint timers: media timeout and RTCP reports.
func (m *mediaState) tick(now time.Time) {
	for _, l := range m.legs {
		ep := l.ep
		ep.Tick(now)
		if _, ok := ep.Negotiated(); !ok || ep.TimedOut() || m.opts.MediaTimeout <= 0 {
			continue
		}
		since := ep.LastMedia()
		if since.IsZero() {
			since = ep.Created()
		}
		if gap := now.Sub(since); gap > m.opts.MediaTimeout {
			ep.SetTimedOut(true)
			m.s.emit(protocol.EventMediaTimeout, map[string]any{
				"endpoint_id": ep.ID().String(), "duration_ms": gap.Milliseconds(),
			})
			if ep.State() == endpoint.StateConnected {
				m.setState(l, endpoint.StateDisconnected)
			}
		}
	}
}

// close ends every endpoint (session teardown).
func (m *mediaState) close() {
	if m.statsTimer != nil {
		m.statsTimer.Stop()
	}
	for _, l := range m.legs {
		l.ep.Close()
		m.s.mgr.metrics.EndpointsActive.Dec()
	}
	m.legs = nil
}

// EndpointInfo is one entry of session.info's endpoints (PROTOCOL.md §4).
type EndpointInfo struct {
	EndpointID   string  `json:"endpoint_id"`
	EndpointType string  `json:"endpoint_type"`
	Direction    string  `json:"direction"`
	State        string  `json:"state"`
	Codec        *string `json:"codec"`
}

// endpointInfos lists the endpoints for session.info and GET /sessions/{id}.
func (m *mediaState) endpointInfos() []any {
	out := make([]any, 0, len(m.legs))
	for _, l := range m.legs {
		info := EndpointInfo{
			EndpointID:   l.ep.ID().String(),
			EndpointType: "rtp",
			Direction:    string(l.ep.Direction()),
			State:        string(l.ep.State()),
		}
		if c := l.ep.Codec(); c != "" {
			info.Codec = &c
		}
		out = append(out, info)
	}
	return out
}

package session

import (
	"errors"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

type statsSubscribeParams struct {
	IntervalMS *uint32 `json:"interval_ms"`
}

func (p *statsSubscribeParams) validate() error {
	if p.IntervalMS == nil {
		v := uint32(5000)
		p.IntervalMS = &v
	}
	if *p.IntervalMS < 500 || *p.IntervalMS > 3600000 {
		return errors.New("interval_ms must be within 500..=3600000")
	}
	return nil
}

// statsSubscribe replaces any subscription; the first event comes one interval later (§7).
func (s *Session) statsSubscribe(p *statsSubscribeParams) (any, error) {
	m := s.media
	m.statsEvery = time.Duration(*p.IntervalMS) * time.Millisecond
	if m.statsTimer != nil {
		m.statsTimer.Stop()
	}
	m.statsTimer = time.NewTimer(m.statsEvery)
	return nil, nil
}

func (m *mediaState) statsUnsubscribe() any {
	if m.statsTimer != nil {
		m.statsTimer.Stop()
		m.statsTimer = nil
	}
	return nil
}

// InboundStats is the inbound half of an endpoint's statistics (PROTOCOL.md §21).
type InboundStats struct {
	Packets           uint64  `json:"packets"`
	Bytes             uint64  `json:"bytes"`
	PacketsLost       int64   `json:"packets_lost"`
	JitterMS          float64 `json:"jitter_ms"`
	LastReceivedMSAgo int64   `json:"last_received_ms_ago"`
}

// OutboundStats is the outbound half.
type OutboundStats struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// EndpointStats is one entry of the stats event.
type EndpointStats struct {
	EndpointID string        `json:"endpoint_id"`
	Inbound    InboundStats  `json:"inbound"`
	Outbound   OutboundStats `json:"outbound"`
	RTTMS      *float64      `json:"rtt_ms"`
	Codec      string        `json:"codec"`
	State      string        `json:"state"`
}

// emitStats sends the stats event and re-arms the timer.
func (m *mediaState) emitStats(now time.Time) {
	if m.statsTimer == nil {
		return
	}
	m.statsTimer.Reset(m.statsEvery)
	out := make([]EndpointStats, 0, len(m.legs))
	for _, l := range m.legs {
		ep := l.rtp
		if ep == nil {
			// PCM legs have no RTP peer: no packet counters, only their state (§21).
			out = append(out, EndpointStats{EndpointID: l.ep.ID().String(), Codec: l.codecName(), State: string(l.ep.State())})
			continue
		}
		recv, send := ep.Receiver(), ep.Sender()
		st := EndpointStats{
			EndpointID: l.ep.ID().String(),
			Inbound: InboundStats{
				Packets:           recv.Packets(),
				Bytes:             recv.Bytes(),
				PacketsLost:       recv.PacketsLost(),
				JitterMS:          recv.JitterMs(),
				LastReceivedMSAgo: recv.LastReceivedAgo(now),
			},
			Outbound: OutboundStats{Packets: send.Packets(), Bytes: send.Octets()},
			Codec:    ep.Codec(),
			State:    string(l.ep.State()), // lowercase (D5)
		}
		if rtt, ok := send.RTTMs(); ok {
			st.RTTMS = &rtt
		}
		out = append(out, st)
	}
	m.s.emit(protocol.EventStats, map[string]any{"endpoints": out})
}

package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/wsaudio"
)

// createWebsocketParams are endpoint.create_websocket's (PROTOCOL.md §30).
type createWebsocketParams struct {
	Direction  endpoint.Direction `json:"direction"`
	SampleRate *uint32            `json:"sample_rate"`
	FlushMs    *uint32            `json:"flush_ms"`
}

func (p *createWebsocketParams) validate() error {
	if p.Direction == "" {
		p.Direction = endpoint.SendRecv
	}
	if p.SampleRate == nil {
		p.SampleRate = new(uint32)
		*p.SampleRate = 8000
	}
	if !wsaudio.ValidRate(int(*p.SampleRate)) {
		return fmt.Errorf("sample_rate must be one of 8000, 16000, 48000, not %d", *p.SampleRate)
	}
	if p.FlushMs == nil {
		p.FlushMs = new(uint32)
	}
	if f := *p.FlushMs; f%endpoint.FrameDuration != 0 || f > wsaudio.MaxFlushMs {
		return fmt.Errorf("flush_ms must be a multiple of 20 up to %d, not %d", wsaudio.MaxFlushMs, f)
	}
	return nil
}

var errNoWSAudio = errors.New("WebSocket audio endpoints are not enabled on this server")

// createWebsocket adds a WebSocket audio endpoint: state connecting, routed once its audio
// socket presents the token; removed with endpoint.ws.connect_timeout if none comes.
func (s *Session) createWebsocket(p *createWebsocketParams) (any, error) {
	m := s.media
	hub := s.mgr.opts.WSAudio
	if hub == nil {
		return nil, endpointError("%v", errNoWSAudio)
	}
	if m.full() {
		return nil, endpointError("MAX_ENDPOINTS_REACHED")
	}
	var ep *wsaudio.Endpoint
	hooks := wsaudio.Hooks{
		Remove: func() {
			if l, ok := m.byEP[ep]; ok {
				m.remove(l, time.Now())
			}
		},
		// A leg whose socket went away leaves the routing table at once rather than at the
		// next rebuild: its mixers stop waiting for it.
		Changed: m.rebuild,
	}
	ep, err := wsaudio.New(hub, uuid.New(), p.Direction, int(*p.SampleRate), int(*p.FlushMs), hooks)
	if err != nil {
		return nil, endpointError("%v", err)
	}
	if err := ep.Start(m.worker, m); err != nil {
		ep.Close()
		return nil, endpointError("%v", err)
	}
	m.add(ep, time.Now())
	return map[string]string{"endpoint_id": ep.ID().String(), "connect_token": ep.Token().String()}, nil
}

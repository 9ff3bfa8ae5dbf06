package session

import (
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint/webrtc"
)

// lookupWebrtcMethod resolves the methods of WebRTC endpoints (PROTOCOL.md §6, §10, §13.5, §21).
func lookupWebrtcMethod(name string) (Method, bool) {
	switch name {
	case "endpoint.ice_restart":
		return newMethod(name, (*Session).iceRestart), true
	}
	return Method{}, false
}

// addWebRTC creates a WebRTC leg (limit and ports permitting), lets negotiate produce its SDP,
// and adds it to the session; on any failure the leg, its socket and pion's goroutines are
// released before the error is returned.
func (m *mediaState) addWebRTC(dir endpoint.Direction, negotiate func(*webrtc.Endpoint) ([]byte, error)) (string, []byte, error) {
	if m.full() {
		return "", nil, endpointError("MAX_ENDPOINTS_REACHED")
	}
	ports := m.s.mgr.opts.WebRTCPorts
	if ports == nil {
		return "", nil, endpointError("WebRTC endpoints are not configured on this server")
	}
	now := time.Now()
	ep, err := webrtc.New(uuid.New(), dir, webrtc.Options{Ports: ports, LoggerFactory: webrtc.SlogFactory{Log: m.s.mgr.log}})
	if err != nil {
		return "", nil, endpointError("%v", err)
	}
	_, sdpText, err := m.startLeg(ep, func() ([]byte, error) { return negotiate(ep) }, now)
	if err != nil {
		return "", nil, err
	}
	return ep.ID().String(), sdpText, nil
}

func (s *Session) createWebRTCFromOffer(p *createFromOfferParams, raw []byte) (any, error) {
	id, answer, err := s.media.addWebRTC(p.Direction, func(ep *webrtc.Endpoint) ([]byte, error) {
		return ep.AnswerOffer(raw, p.Codecs)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"endpoint_id": id, "sdp_answer": string(answer)}, nil
}

func (s *Session) createWebRTCOffer(p *createOfferParams) (any, error) {
	id, offer, err := s.media.addWebRTC(p.Direction, func(ep *webrtc.Endpoint) ([]byte, error) {
		return ep.CreateOffer(p.Codecs)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"endpoint_id": id, "sdp_offer": string(offer)}, nil
}

// acceptWebRTCAnswer completes our offer or ICE restart (endpoint.accept_answer).
func (s *Session) acceptWebRTCAnswer(ep *webrtc.Endpoint, raw string) (any, error) {
	if err := ep.AcceptAnswer([]byte(raw), time.Now()); err != nil {
		return nil, endpointError("%v", err)
	}
	s.media.rebuild()
	return nil, nil
}

func (s *Session) iceRestart(p *endpointRef) (any, error) {
	l, err := s.media.leg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	ep, ok := l.ep.(*webrtc.Endpoint)
	if !ok {
		return nil, endpointError("Not a WebRTC endpoint")
	}
	offer, err := ep.ICERestart()
	if err != nil {
		return nil, endpointError("%v", err)
	}
	return map[string]string{"sdp_offer": string(offer)}, nil
}

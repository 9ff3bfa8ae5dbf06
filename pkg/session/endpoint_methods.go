package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint/webrtc"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// lookupMediaMethod resolves endpoint and statistics methods.
func lookupMediaMethod(name string) (Method, bool) {
	switch name {
	case "endpoint.create_offer":
		return newMethod(name, (*Session).createOffer), true
	case "endpoint.create_from_offer":
		return newMethod(name, (*Session).createFromOffer), true
	case "endpoint.accept_answer":
		return newMethod(name, (*Session).acceptAnswer), true
	case "endpoint.remove":
		return newMethod(name, (*Session).removeEndpoint), true
	case "endpoint.srtp_rekey":
		return newMethod(name, (*Session).srtpRekey), true
	case "stats.subscribe":
		return newMethod(name, (*Session).statsSubscribe), true
	case "stats.unsubscribe":
		return newMethod(name, func(s *Session, _ *noParams) (any, error) { return s.media.statsUnsubscribe(), nil }), true
	}
	// Each capability keeps its methods in its own file.
	for _, lookup := range [...]func(string) (Method, bool){
		lookupWebrtcMethod, lookupPlaybackMethod, lookupDtmfMethod, lookupRecordingMethod, lookupBridgeMethod,
	} {
		if m, ok := lookup(name); ok {
			return m, true
		}
	}
	return Method{}, false
}

func endpointError(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeEndpointError, format, args...)
}

// codecList is the `codecs` parameter: a preference order of codec names (D10).
type codecList []string

func (c *codecList) resolve() error {
	if *c == nil {
		return nil
	}
	resolved, err := sdp.ResolveCodecs(*c)
	if err != nil {
		return protocol.Errorf(protocol.CodeInvalidParams, "codecs: %v", err)
	}
	*c = resolved
	return nil
}

type createOfferParams struct {
	Type      *string            `json:"type"`
	Direction endpoint.Direction `json:"direction"`
	SRTP      bool               `json:"srtp"`
	Codecs    codecList          `json:"codecs"`
}

func (p *createOfferParams) validate() error {
	if p.Type == nil {
		return errors.New("missing field `type`")
	}
	if *p.Type != "rtp" && *p.Type != "webrtc" {
		return fmt.Errorf("unknown endpoint type %q, expected rtp or webrtc", *p.Type)
	}
	if p.Direction == "" {
		p.Direction = endpoint.SendRecv
	}
	return p.Codecs.resolve()
}

func (s *Session) createOffer(p *createOfferParams) (any, error) {
	if *p.Type == "webrtc" {
		return s.createWebRTCOffer(p)
	}
	id, offer, err := s.media.addRTP(p.Direction, func(ep *endpoint.RTP) ([]byte, error) {
		return ep.CreateOffer(p.Codecs, p.SRTP)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"endpoint_id": id, "sdp_offer": string(offer)}, nil
}

// addRTP creates a plain RTP leg (limit and ports permitting), lets negotiate produce its SDP,
// and adds it to the session; on any failure the leg and its ports are released.
func (m *mediaState) addRTP(dir endpoint.Direction, negotiate func(*endpoint.RTP) ([]byte, error)) (string, []byte, error) {
	if m.full() {
		return "", nil, endpointError("MAX_ENDPOINTS_REACHED")
	}
	now := time.Now()
	ep, err := endpoint.NewRTP(uuid.New(), dir, m.opts.Ports, &m.opts.Sources, &m.scratch, now)
	if err != nil {
		return "", nil, endpointError("%v", err)
	}
	l, sdpText, err := m.startLeg(ep, func() ([]byte, error) { return negotiate(ep) }, now)
	if err != nil {
		return "", nil, err
	}
	m.warnSharedKey(l)
	return ep.ID().String(), sdpText, nil
}

// startLeg lets negotiate produce a new leg's SDP, starts the leg's transport and adds it to
// the session; on any failure the leg is closed, so nothing (port, socket, goroutine) is left.
func (m *mediaState) startLeg(ep endpoint.Leg, negotiate func() ([]byte, error), now time.Time) (*leg, []byte, error) {
	sdpText, err := negotiate()
	if err == nil {
		err = ep.Start(m.worker, m)
	}
	if err != nil {
		ep.Close()
		return nil, nil, endpointError("%v", err)
	}
	return m.add(ep, now), sdpText, nil
}

// warnSharedKey logs, once per endpoint, that its SDES peer echoed our key: accepted for
// compatibility (issue 11), but both directions then rest on one master key.
func (m *mediaState) warnSharedKey(l *leg) {
	keyed, ok := l.ep.(interface{ SharedSRTPKey() bool })
	if l.warnedSharedKey || !ok || !keyed.SharedSRTPKey() {
		return
	}
	l.warnedSharedKey = true
	m.s.mgr.log.Warn("SRTP peer uses our own key for its direction; accepted, but both directions now depend on one master key (reflected packets with our SSRC are dropped)",
		"session_id", m.s.id, "endpoint_id", l.ep.ID())
}

type createFromOfferParams struct {
	SDP       *string            `json:"sdp"`
	Direction endpoint.Direction `json:"direction"`
	Codecs    codecList          `json:"codecs"`
}

func (p *createFromOfferParams) validate() error {
	if p.SDP == nil {
		return errors.New("missing field `sdp`")
	}
	if p.Direction == "" {
		p.Direction = endpoint.SendRecv
	}
	return p.Codecs.resolve()
}

// checkSDP applies max_sdp_size_kb (INVALID_PARAMS `SDP too large`).
func (m *mediaState) checkSDP(raw string) error {
	if err := sdp.CheckSize([]byte(raw), m.opts.MaxSDPBytes); err != nil {
		return protocol.Errorf(protocol.CodeInvalidParams, "%s", err.Error())
	}
	return nil
}

func (s *Session) createFromOffer(p *createFromOfferParams) (any, error) {
	if err := s.media.checkSDP(*p.SDP); err != nil {
		return nil, err
	}
	raw := []byte(*p.SDP)
	if sdp.IsWebRTC(raw) {
		return s.createWebRTCFromOffer(p, raw)
	}
	offer, err := sdp.Parse(raw)
	if err != nil {
		return nil, endpointError("%v", err)
	}
	id, answer, err := s.media.addRTP(p.Direction, func(ep *endpoint.RTP) ([]byte, error) {
		return ep.AnswerOffer(offer, p.Codecs)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"endpoint_id": id, "sdp_answer": string(answer)}, nil
}

type endpointRef struct {
	EndpointID *uuid.UUID `json:"endpoint_id"`
}

func (p *endpointRef) validate() error {
	if p.EndpointID == nil {
		return errors.New("missing field `endpoint_id`")
	}
	return nil
}

// leg finds an endpoint of this session (`Endpoint not found` otherwise).
func (m *mediaState) leg(id uuid.UUID) (*leg, error) {
	l, ok := m.byID[id]
	if !ok {
		return nil, endpointError("Endpoint not found")
	}
	return l, nil
}

type acceptAnswerParams struct {
	endpointRef
	SDP *string `json:"sdp"`
}

func (p *acceptAnswerParams) validate() error {
	if err := p.endpointRef.validate(); err != nil {
		return err
	}
	if p.SDP == nil {
		return errors.New("missing field `sdp`")
	}
	return nil
}

func (s *Session) acceptAnswer(p *acceptAnswerParams) (any, error) {
	if err := s.media.checkSDP(*p.SDP); err != nil {
		return nil, err
	}
	l, err := s.media.leg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	if w, ok := l.ep.(*webrtc.Endpoint); ok {
		return s.acceptWebRTCAnswer(w, *p.SDP)
	}
	answer, err := sdp.Parse([]byte(*p.SDP))
	if err != nil {
		return nil, endpointError("%v", err)
	}
	ep, ok := l.ep.(*endpoint.RTP)
	if !ok {
		return nil, endpointError("endpoint.accept_answer is for RTP endpoints")
	}
	if err := ep.AcceptAnswer(answer, time.Now()); err != nil {
		return nil, endpointError("%v", err)
	}
	s.media.warnSharedKey(l)
	s.media.rebuild()
	return nil, nil
}

func (s *Session) srtpRekey(p *endpointRef) (any, error) {
	l, err := s.media.leg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	ep, ok := l.ep.(*endpoint.RTP)
	if !ok {
		return nil, endpointError("SRTP is not active on this endpoint")
	}
	offer, err := ep.Rekey(time.Now())
	if err != nil {
		return nil, endpointError("%v", err)
	}
	return map[string]string{"sdp": string(offer)}, nil
}

func (s *Session) removeEndpoint(p *endpointRef) (any, error) {
	l, err := s.media.leg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	s.media.remove(l, time.Now())
	return nil, nil
}

package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/dtmf"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// lookupDtmfMethod resolves the methods of DTMF injection and detection, fax tone detection (PROTOCOL.md §6, §16, §31).
func lookupDtmfMethod(name string) (Method, bool) {
	switch name {
	case "endpoint.dtmf.inject":
		return newMethod(name, (*Session).injectDTMF), true
	case "fax_detect.start":
		return newMethod(name, (*Session).faxDetectStart), true
	case "fax_detect.stop":
		return newMethod(name, (*Session).faxDetectStop), true
	}
	return Method{}, false
}

// Defaults of endpoint.dtmf.inject (§6).
const (
	defaultInjectMS     = 160
	defaultInjectVolume = 10
)

// injectParams are endpoint.dtmf.inject's (§6): digit one of 0-9*#A-D (a-d upper-cased),
// duration_ms 1..=10000 (160), volume 0..=63 (10).
type injectParams struct {
	endpointRef
	Digit      *string `json:"digit"`
	DurationMS *uint32 `json:"duration_ms"`
	Volume     *uint8  `json:"volume"`
}

func (p *injectParams) validate() error {
	if err := p.endpointRef.validate(); err != nil {
		return err
	}
	if p.Digit == nil {
		return errors.New("missing field `digit`")
	}
	if _, ok := dtmf.EventID(firstByte(*p.Digit)); len(*p.Digit) != 1 || !ok {
		return fmt.Errorf("invalid digit %q: expected one of 0-9, *, #, A-D", *p.Digit)
	}
	if p.DurationMS == nil {
		v := uint32(defaultInjectMS)
		p.DurationMS = &v
	}
	if *p.DurationMS < dtmf.MinInjectMS || *p.DurationMS > dtmf.MaxInjectMS {
		return fmt.Errorf("duration_ms %d out of range %d..=%d", *p.DurationMS, dtmf.MinInjectMS, dtmf.MaxInjectMS)
	}
	if p.Volume == nil {
		v := uint8(defaultInjectVolume)
		p.Volume = &v
	}
	if *p.Volume > dtmf.MaxVolume {
		return fmt.Errorf("volume %d out of range 0..=%d", *p.Volume, dtmf.MaxVolume)
	}
	return nil
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

func (s *Session) injectDTMF(p *injectParams) (any, error) {
	l, err := s.media.leg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	if inj := s.dtmf.inject; inj != nil {
		if s.media.alive(inj.dst) {
			return nil, endpointError("DTMF injection already in progress")
		}
		s.endInjection() // its leg left and the timer has not noticed yet
	}
	if typ := l.ep.Type(); typ == "file" || typ == "tone" {
		return nil, endpointError("Cannot inject DTMF into file endpoint")
	}
	if l.rtp == nil {
		return nil, endpointError("Cannot inject DTMF into %s endpoint: no telephone-event", l.ep.Type())
	}
	neg, ok := l.rtp.Negotiated()
	if !ok || neg.TelephoneEventPT == 0 {
		return nil, endpointError("Endpoint has no telephone-event payload type")
	}
	j, err := dtmf.NewInjection(firstByte(*p.Digit), *p.DurationMS, *p.Volume, eventClock(l))
	if err != nil {
		return nil, endpointError("%v", err)
	}
	s.startInjection(l, j, time.Now())
	return map[string]any{}, nil
}

func faxError(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeFaxDetectError, format, args...)
}

// faxDetectStart is fax_detect.start (§31): detection of CNG and CED on the endpoint's
// decoded inbound audio; repeating restarts it.
func (s *Session) faxDetectStart(p *endpointRef) (any, error) {
	l, ok := s.media.byID[*p.EndpointID]
	if !ok {
		return nil, faxError("Endpoint not found")
	}
	t := s.tones(l)
	if t.fax != nil {
		t.fax.det.Reset()
		return map[string]any{}, nil
	}
	t.fax = &faxTap{s: s, l: l, det: dtmf.NewFax(inbandRate)}
	s.media.addAudioTap(l, t.fax)
	if l.member() && l.src == nil {
		// The shared decode could not be set up for this leg (counted as a transcode error).
		s.emit(protocol.EventFaxError, map[string]string{
			"endpoint_id": l.ep.ID().String(), "error": "fax detection: the endpoint's audio cannot be decoded",
		})
	}
	return map[string]any{}, nil
}

// faxDetectStop is fax_detect.stop (§31).
func (s *Session) faxDetectStop(p *endpointRef) (any, error) {
	l, ok := s.media.byID[*p.EndpointID]
	if !ok {
		return nil, faxError("Endpoint not found")
	}
	t := s.dtmf.legs[l]
	if t == nil || t.fax == nil {
		return nil, faxError("Fax detection not active for endpoint")
	}
	s.media.removeAudioTap(l, t.fax)
	t.fax = nil
	return map[string]any{}, nil
}

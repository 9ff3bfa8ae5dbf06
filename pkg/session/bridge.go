package session

import (
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint/bridge"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// session.bridge (PROTOCOL.md §22 with D15) touches two sessions. Neither session loop ever
// waits on the other: the caller's goroutine (the connection's worker) runs one bounded
// command on each in turn (§2.4 "per step"), in prepare below, and the method's own command
// on the caller's session only returns the result.

// bridgeReason is endpoint.removed's reason when a bridge half goes with its partner (§29).
const bridgeReason = "bridge_partner_removed"

type bridgeParams struct {
	TargetSessionID *uuid.UUID         `json:"target_session_id"`
	Direction       endpoint.Direction `json:"direction"`

	result map[string]string // filled by prepare
}

func (p *bridgeParams) validate() error {
	if p.TargetSessionID == nil {
		return errors.New("missing field `target_session_id`")
	}
	if p.Direction == "" {
		p.Direction = endpoint.SendRecv
	}
	return nil
}

// prepare adds the caller's half, then the target's; if the target's cannot be added the
// caller's is removed again (§22).
func (p *bridgeParams) prepare(s *Session) error {
	if *p.TargetSessionID == s.id {
		return protocol.Errorf(protocol.CodeInvalidParams, "Cannot bridge a session to itself")
	}
	t := s.mgr.Get(*p.TargetSessionID)
	if t == nil {
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	}
	a, b := bridge.NewPair(uuid.New(), uuid.New(), p.Direction)
	// Whichever half goes first takes the other with it, on the other's own loop.
	a.OnClose(func() { go removePartner(t, b) })
	b.OnClose(func() { go removePartner(s, a) })

	if _, err := s.Do("session.bridge", func(s *Session) (any, error) { return nil, s.media.addBridgeHalf(a) }); err != nil {
		return err
	}
	_, err := t.Do("session.bridge", func(t *Session) (any, error) { return nil, t.media.addBridgeHalf(b) })
	if err == nil {
		p.result = map[string]string{"endpoint_id": a.ID().String(), "target_endpoint_id": b.ID().String()}
		return nil
	}
	// Undo the caller's half. Should the target's command have run after all (it timed out
	// while running), closing a removes b too, as for any removal.
	_, _ = s.Do("session.bridge", func(s *Session) (any, error) {
		if l, ok := s.media.byEP[a]; ok {
			s.media.remove(l, time.Now())
		}
		return nil, nil
	})
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.CodeSessionGone {
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	}
	if errors.As(err, &perr) && perr.Code == protocol.CodeSessionUnresponsive {
		return err
	}
	return protocol.Errorf(protocol.CodeEndpointError, "%s", errorText(err))
}

func (p *bridgeParams) release() {}

func errorText(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Message
	}
	return err.Error()
}

// sessionBridge is the caller's command once both halves are in place.
func (s *Session) sessionBridge(p *bridgeParams) (any, error) {
	return p.result, nil
}

// addBridgeHalf adds one half of a bridge, limit permitting (§22: each half counts).
//
// A half whose partner has closed already (removed, or its session ended, while this half was
// on its way) is refused: the partner's removePartner found nothing to remove and will not come
// back. The check and the add run on this session's loop, where removePartner runs too, so a
// partner that closes after the check finds this half in place and removes it.
func (m *mediaState) addBridgeHalf(l *bridge.Leg) error {
	if !l.Linked() {
		return endpointError("Bridge partner endpoint was removed")
	}
	if m.full() {
		return endpointError("Maximum endpoints per session reached")
	}
	if err := l.Start(m.worker, m); err != nil {
		return endpointError("%v", err)
	}
	m.add(l, time.Now())
	return nil
}

// removePartner removes the half ep from s after its partner went, and tells s's client
// (D15). It runs on its own goroutine so that the session whose half closed never waits on
// s; Post bounds the wait.
func removePartner(s *Session, ep *bridge.Leg) {
	m := s.media
	m.Post(func() {
		l, ok := m.byEP[ep]
		if !ok {
			return // removed already, or never added
		}
		now := time.Now()
		m.remove(l, now)
		s.emit(protocol.EventEndpointRemoved, map[string]string{"endpoint_id": ep.ID().String(), "reason": bridgeReason})
	})
}

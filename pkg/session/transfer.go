package session

import (
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// endpoint.transfer (PROTOCOL.md §22 with D4) moves a live leg from the caller's session S to
// a target session T. The leg object moves whole: its sockets, SRTP and latch state, statistics
// and outgoing stream, so its peer sees no change; only the session it reports to changes
// (endpoint.Mover). Neither session loop ever waits on the other: the caller's goroutine runs
// one bounded command on each in turn.
//
//  0. S: the endpoint exists and can move (ENDPOINT_ERROR otherwise).
//  1. T: is there room? If not, TRANSFER_FAILED before anything moves.
//  2. S: detach. Its recordings stop, the leg stops delivering packets (Suspend waits for a
//     read in progress), the packets S already queued are routed in S, and the leg leaves S
//     without being closed.
//  3. T: attach, limit permitting: Resume on T's worker, join routing, endpoint.transferred_in.
//  4. If step 3 failed (full meanwhile, T gone or unresponsive): S takes the leg back, silently,
//     beyond its own limit if it filled up meanwhile; TRANSFER_FAILED. If S is gone too, the
//     leg is closed, as S's teardown would have closed it.
//  5. S: endpoint.transferred_out, the method's result.
//
// A handoff records who owns the leg between the steps. A command whose caller gave up
// (SESSION_UNRESPONSIVE) may still run later; it checks the handoff first, so the leg is never
// in two sessions and never in none.

type handoffState int

const (
	hoPending   handoffState = iota // step 2 has not run
	hoCancelled                     // the caller gave up on step 2: it must not run
	hoDetached                      // in nobody's session, owned by the caller
	hoInTarget                      // step 3 ran
	hoReturning                     // step 3 failed; step 4 may run
	hoBack                          // step 4 ran
	hoClosed                        // step 4 could not run: the leg was closed
)

type handoff struct {
	mu    sync.Mutex
	state handoffState
	l     *leg         // the leg as S knew it (step 2)
	ep    endpoint.Leg // the endpoint itself
	mover endpoint.Mover
	tones *legTones // its DTMF detectors (a digit in progress completes in the target)
}

type transferParams struct {
	endpointRef
	TargetSessionID *uuid.UUID `json:"target_session_id"`

	target *Session
	ho     handoff
}

func (p *transferParams) validate() error {
	if err := p.endpointRef.validate(); err != nil {
		return err
	}
	if p.TargetSessionID == nil {
		return errors.New("missing field `target_session_id`")
	}
	return nil
}

var errTargetFull = protocol.Errorf(protocol.CodeTransferFailed, "Maximum endpoints per session reached")

// prepare runs steps 1 to 4 from the caller's goroutine; the method's command is step 5.
func (p *transferParams) prepare(s *Session) error {
	if *p.TargetSessionID == s.id {
		return protocol.Errorf(protocol.CodeInvalidParams, "Cannot transfer an endpoint to its own session")
	}
	t := s.mgr.Get(*p.TargetSessionID)
	if t == nil {
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	}
	p.target = t
	ho := &p.ho

	// 0. The endpoint exists and is of a kind that moves (§22's ENDPOINT_ERRORs come first).
	if _, err := s.Do("endpoint.transfer", func(s *Session) (any, error) {
		l, err := s.media.leg(*p.EndpointID)
		if err == nil {
			_, err = transferable(l)
		}
		return nil, err
	}); err != nil {
		return err
	}

	// 1. Room in the target, before anything moves (D4).
	if _, err := t.Do("endpoint.transfer", func(t *Session) (any, error) {
		if t.media.full() {
			return nil, errTargetFull
		}
		return nil, nil
	}); err != nil {
		return transferFailed(err)
	}

	// 2. Detach from the source.
	_, err := s.Do("endpoint.transfer", func(s *Session) (any, error) {
		ho.mu.Lock()
		defer ho.mu.Unlock()
		if ho.state != hoPending {
			return nil, errUnresponsive // its caller gave up
		}
		l, ok := s.media.byID[*p.EndpointID]
		if !ok {
			// It was there at step 0: removed, or moved by another transfer, meanwhile.
			return nil, protocol.Errorf(protocol.CodeTransferFailed, "Endpoint left the session during the transfer")
		}
		mover, err := transferable(l)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		s.stopLegRecordings(l, reasonEndpointTransferred, now)
		mover.Suspend()
		s.media.drainQueued()
		s.media.detachLeg(l, now)
		ho.state, ho.l, ho.ep, ho.mover = hoDetached, l, l.ep, mover
		ho.tones = s.dtmf.legs[l]
		delete(s.dtmf.legs, l)
		return nil, nil
	})
	ho.mu.Lock()
	if ho.state == hoPending {
		ho.state = hoCancelled
		ho.mu.Unlock()
		return err // nothing moved
	}
	ho.mu.Unlock()

	// 3. Attach to the target. The leg carries nothing while it waits, so the target gets a
	// shorter bound than a command's: past it the leg goes back (a late attach is a no-op).
	err = doWithin(t, attachWait(s.mgr.opts.CommandTimeout), func(t *Session) (any, error) {
		ho.mu.Lock()
		defer ho.mu.Unlock()
		if ho.state != hoDetached {
			return nil, errUnresponsive
		}
		if t.media.full() {
			return nil, errTargetFull
		}
		if err := ho.mover.Resume(t.media.worker, t.media, &t.media.scratch); err != nil {
			return nil, protocol.Errorf(protocol.CodeTransferFailed, "%v", err)
		}
		nl := t.media.add(ho.ep, time.Now())
		t.carryLegState(ho, nl)
		ho.state = hoInTarget
		t.emit(protocol.EventTransferredIn, map[string]string{
			"endpoint_id":       ho.ep.ID().String(),
			"source_session_id": s.id.String(),
			"endpoint_type":     ho.ep.Type(),
			"direction":         string(ho.ep.Direction()),
			"state":             string(ho.ep.State()),
		})
		return nil, nil
	})
	ho.mu.Lock()
	if ho.state == hoInTarget {
		ho.mu.Unlock()
		return nil // the target has it, whatever its reply said
	}
	ho.state = hoReturning
	ho.mu.Unlock()

	// 4. Back to the source.
	_, _ = s.Do("endpoint.transfer", func(s *Session) (any, error) {
		ho.mu.Lock()
		defer ho.mu.Unlock()
		if ho.state != hoReturning {
			return nil, nil
		}
		if err := ho.mover.Resume(s.media.worker, s.media, &s.media.scratch); err != nil {
			// Its sockets cannot join the worker they just left: nothing can carry it.
			s.mgr.log.Error("transferred endpoint could not return to its session; closed", "session_id", s.id, "endpoint_id", ho.ep.ID(), "err", err)
			ho.ep.Close()
			ho.state = hoClosed
			return nil, nil
		}
		nl := s.media.add(ho.ep, time.Now())
		s.carryLegState(ho, nl)
		ho.state = hoBack
		return nil, nil
	})
	ho.mu.Lock()
	if ho.state == hoReturning {
		// The source ended (or stopped answering) while the endpoint was away: it would have
		// been closed with the source.
		ho.ep.Close()
		ho.state = hoClosed
	}
	ho.mu.Unlock()
	return transferFailed(err)
}

func (p *transferParams) release() {}

// maxAttachWait bounds step 3: the peer hears nothing while its leg waits for the target.
const maxAttachWait = time.Second

func attachWait(commandTimeout time.Duration) time.Duration {
	return min(commandTimeout, maxAttachWait)
}

// doWithin runs fn on s like Do, but stops waiting after d (SESSION_UNRESPONSIVE). The command
// itself may still run later, within Do's own bound; its goroutine ends with it.
func doWithin(s *Session, d time.Duration, fn func(s *Session) (any, error)) error {
	res := make(chan error, 1)
	go func() {
		_, err := s.Do("endpoint.transfer", fn)
		res <- err
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		return errUnresponsive
	}
}

// transferFailed turns the reason a target refused into TRANSFER_FAILED (D4).
func transferFailed(err error) error {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.CodeTransferFailed {
		return perr
	}
	return protocol.Errorf(protocol.CodeTransferFailed, "Target session did not accept the endpoint: %s", errorText(err))
}

// transferable returns the leg's Mover, or the ENDPOINT_ERROR for kinds that cannot move.
func transferable(l *leg) (endpoint.Mover, error) {
	switch l.ep.Type() {
	case "file", "tone":
		return nil, endpointError("File endpoints cannot be transferred")
	case "websocket":
		return nil, endpointError("WebSocket endpoints cannot be transferred")
	case "bridge":
		return nil, endpointError("Bridge endpoints cannot be transferred")
	}
	mv, ok := l.ep.(endpoint.Mover)
	if !ok || l.rtp == nil {
		return nil, endpointError("%s endpoints cannot be transferred", l.ep.Type())
	}
	return mv, nil
}

// endpointTransfer is step 5, on the source: the endpoint left, tell the source's client.
func (s *Session) endpointTransfer(p *transferParams) (any, error) {
	if p.ho.state != hoInTarget {
		// Unreachable: prepare returns an error whenever the endpoint did not move.
		return nil, protocol.Errorf(protocol.CodeTransferFailed, "Transfer did not complete")
	}
	target := p.target.id.String()
	s.emit(protocol.EventTransferredOut, map[string]string{"endpoint_id": p.EndpointID.String(), "target_session_id": target})
	return map[string]string{"endpoint_id": p.EndpointID.String(), "target_session_id": target}, nil
}

// drainQueued routes every packet the session has queued (its media worker found it busy).
// Called with the session's lock held, after a leg stopped delivering: the packets it had
// already handed over are routed where they arrived, before it leaves.
func (m *mediaState) drainQueued() {
	for m.queue.pending() {
		m.handleQueued()
	}
}

// carryLegState gives the leg's new record in s what its old session kept about it beyond
// the endpoint object: the RFC 4733 detector (a digit in progress is reported once, by s)
// and the shared-key warning. Taps (in-band DTMF, recordings) are the new session's own.
func (s *Session) carryLegState(ho *handoff, to *leg) {
	to.warnedSharedKey = ho.l.warnedSharedKey
	if ho.tones != nil && ho.tones.rfc != nil {
		t := s.tones(to)
		t.rfc, t.rfcAt = ho.tones.rfc, ho.tones.rfcAt
	}
}

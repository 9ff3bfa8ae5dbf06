package session

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/dtmf"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
)

// The DTMF hooks on the packet path allocate nothing: a telephone-event packet through the
// leg's detector, the paused-audio check, and a frame of audio through an in-band tap.
func TestDTMFHooksAllocateNothing(t *testing.T) {
	s := mediaTestSession(t)
	te := addOfferedLeg(t, s, rtppeer.New(t), "0 PCMU/8000", "101 telephone-event/8000")
	plain := addOfferedLeg(t, s, rtppeer.New(t), "0 PCMU/8000")
	s.Do("test.allocs", func(s *Session) (any, error) {
		m := s.media
		now := time.Now()
		in := endpoint.Inbound{Kind: endpoint.InboundMedia, DTMF: true}
		in.Header.SSRC, in.Header.Timestamp = 7, 1000
		payload := dtmf.Event{ID: 5, Duration: 160}.Append(nil)
		in.Payload = payload
		m.onDTMFPacket(te, &in, now) // the detector is made on the first packet
		allocs := testing.AllocsPerRun(200, func() {
			payload[3] += 160 // the event goes on (a longer duration, same timestamp)
			m.onDTMFPacket(te, &in, now)
			_ = m.audioPaused(plain, now)
		})
		if allocs != 0 {
			t.Errorf("%v allocations per telephone-event packet", allocs)
		}

		s.prepareInband(plain)
		tap := s.dtmf.legs[plain].inband
		if tap == nil {
			t.Fatal("no in-band tap on a leg without telephone-event (inband_dtmf auto)")
		}
		frame := make([]int16, 160)
		if allocs := testing.AllocsPerRun(200, func() { tap.Audio(frame, now) }); allocs != 0 {
			t.Errorf("%v allocations per in-band frame", allocs)
		}
		if neg, _ := te.rtp.Negotiated(); neg.TelephoneEventPT != 101 {
			t.Fatalf("telephone-event PT %d, want 101", neg.TelephoneEventPT)
		}
		if s.prepareInband(te) || s.dtmf.legs[te].inband != nil {
			t.Error("an in-band tap on a leg with telephone-event (inband_dtmf auto)")
		}
		return nil, nil
	})
}

// addOfferedLeg answers peer's offer of formats ("PT name/clock") in s.
func addOfferedLeg(t *testing.T, s *Session, peer *rtppeer.Peer, formats ...string) *leg {
	t.Helper()
	offer := peer.Offer(formats)
	var l *leg
	if _, err := s.Do("test.create", func(s *Session) (any, error) {
		res, err := s.createFromOffer(&createFromOfferParams{SDP: &offer, Direction: endpoint.SendRecv})
		if err != nil {
			return nil, err
		}
		r := res.(map[string]string)
		peer.RemoteFromSDP(r["sdp_answer"], false)
		l = s.media.byID[uuid.MustParse(r["endpoint_id"])]
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

package sdp

import (
	"errors"
	"fmt"
)

// OfferState is what an endpoint remembers of its own offer, to judge the answer.
type OfferState struct {
	// Codecs is the codec list the offer was built with, as in
	// OfferParams.Codecs (nil = the default list).
	Codecs []string
	// RTCPMux tells whether rtcp-mux is already in effect on the leg; an
	// answer can only switch it on (PROTOCOL.md §13.4).
	RTCPMux bool
}

// AcceptAnswer applies a peer's answer to our offer (PROTOCOL.md §13.4).
//
// The answer's recognised codecs are filtered to the names we offered
// (telephone-event is always offered). If the answer recognises nothing at
// all, the offered set stays as it was: we send the first codec we offered
// with our own payload type. If it recognises something but nothing is left
// after filtering, the error is [ErrAnswerNoOfferedCodec]. The send codec is
// the first kept audio codec with the answer's payload type (none when only
// telephone-event is left). The telephone-event payload type is the answer's
// (the entry whose clock matches the send codec, else the first), none if
// the answer has none. rtcp-mux is on when already on or when the answer has
// it. An answer without a usable address or with port 0 gives
// [ErrAnswerNoAddress].
func AcceptAnswer(offer OfferState, answer *Description) (Negotiated, error) {
	if answer == nil {
		return Negotiated{}, errors.New("accepting SDP answer: no answer")
	}
	offered, err := ResolveCodecs(offer.Codecs)
	if err != nil {
		return Negotiated{}, fmt.Errorf("accepting SDP answer: our offer: %w", err)
	}
	n := Negotiated{
		RemoteAddr:      answer.Addr,
		RemoteRTCPAddr:  answer.RTCPAddr,
		RTCPMux:         offer.RTCPMux || answer.RTCPMux,
		RemoteProfile:   answer.Profile,
		RemoteDirection: answer.Direction,
	}
	if len(answer.Codecs) == 0 && len(answer.TelephoneEvents) == 0 {
		if len(offered) > 0 {
			c, _ := LookupCodec(offered[0])
			n.Codec, n.PayloadType, n.ClockRate = c.Name, c.PayloadType, c.ClockRate
		}
	} else {
		var kept []Format
		for _, c := range answer.Codecs {
			for _, name := range offered {
				if c.Name == name {
					kept = append(kept, c)
					break
				}
			}
		}
		if len(kept) == 0 && len(answer.TelephoneEvents) == 0 {
			return Negotiated{}, ErrAnswerNoOfferedCodec
		}
		if len(kept) > 0 {
			c, _ := LookupCodec(kept[0].Name)
			n.Codec, n.PayloadType, n.ClockRate = c.Name, kept[0].PT, c.ClockRate
			n.OpusFEC = c.Name == Opus && answer.OpusFEC(kept[0].PT)
		}
	}
	if len(answer.TelephoneEvents) > 0 {
		te := answer.TelephoneEvents[0]
		for _, t := range answer.TelephoneEvents {
			if t.ClockRate == n.ClockRate {
				te = t
				break
			}
		}
		n.TelephoneEventPT, n.TelephoneEventClock = te.PT, te.ClockRate
	}
	if !answer.Addr.IsValid() {
		return Negotiated{}, ErrAnswerNoAddress
	}
	return n, nil
}

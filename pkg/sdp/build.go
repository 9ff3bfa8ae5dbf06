package sdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"
	psdp "github.com/pion/sdp/v3"
)

// ptime is the packet time of all media we generate (PROTOCOL.md §12).
const ptime = "20"

// OfferParams describes our own plain RTP offer (PROTOCOL.md §13.3).
type OfferParams struct {
	// EndpointID gives o= its session id: the low 64 bits of the UUID, in decimal.
	EndpointID uuid.UUID
	// Version is the o= session version. Start at 1 and increment for every
	// re-offer of the same endpoint, e.g. an SRTP rekey (RFC 3264 §8). 0 means 1.
	Version uint64
	// MediaIP is media_ip: the c= and o= address (IPv4 or IPv6).
	MediaIP netip.Addr
	// Port is our RTP port.
	Port uint16
	// Codecs is the caller's preference order (PROTOCOL.md §0 D10), resolved
	// by [ResolveCodecs]: nil offers PCMU, PCMA, G722, opus; an empty list
	// offers telephone-event only.
	Codecs []string
	// Crypto holds raw a=crypto values (text after "a=crypto:"), written in
	// order; when present the profile is RTP/SAVP.
	Crypto []string
	// RTCPMux adds a=rtcp-mux (RFC 5761).
	RTCPMux bool
}

// AnswerParams describes our answer to a peer's plain RTP offer (PROTOCOL.md §13.2).
type AnswerParams struct {
	// EndpointID gives o= its session id: the low 64 bits of the UUID, in decimal.
	EndpointID uuid.UUID
	// Version is the o= session version; 0 means 1 (PROTOCOL.md: always 1).
	Version uint64
	// MediaIP is media_ip: the c= and o= address (IPv4 or IPv6).
	MediaIP netip.Addr
	// Port is our RTP port.
	Port uint16
	// Codecs optionally restricts and orders the codecs we accept. nil takes
	// the first supported codec of the offer in m= line order; otherwise we
	// take the offer's codec that comes earliest in this list (see BuildAnswer).
	Codecs []string
	// Crypto holds our raw a=crypto values (text after "a=crypto:"); when
	// present the answer's profile is RTP/SAVP (RTP/SAVPF for feedback offers).
	Crypto []string
}

// Negotiated is the outcome of an offer/answer exchange, seen from our side.
type Negotiated struct {
	// Codec is the canonical name of the codec we send ("" when none was
	// negotiated: an offer or answer with telephone-event only).
	Codec string
	// PayloadType is the peer's payload type for Codec: the one we send with.
	PayloadType uint8
	// ClockRate is Codec's RTP clock (8000, or 48000 for Opus); 0 when no codec.
	ClockRate uint32
	// TelephoneEventPT is the peer's telephone-event payload type; 0 = none.
	TelephoneEventPT uint8
	// TelephoneEventClock is the clock of that telephone-event entry; 0 = none.
	TelephoneEventClock uint32
	// RemoteAddr is where to send RTP; invalid when the peer gave no address
	// or port 0 (it may still be learned, PROTOCOL.md §14).
	RemoteAddr netip.AddrPort
	// RTCPMux tells whether RTP and RTCP share one port (PROTOCOL.md §0 D8).
	RTCPMux bool
	// RemoteRTCPAddr is the peer's a=rtcp address (RFC 3605); zero when it
	// gave none, and RTCP then goes to RemoteAddr's port + 1.
	RemoteRTCPAddr netip.AddrPort
	// RemoteProfile is the transport profile of the peer's SDP.
	RemoteProfile Profile
	// RemoteDirection is the direction attribute of the peer's SDP.
	RemoteDirection Direction
	// OpusFEC is set when Codec is Opus and the peer's fmtp has
	// useinbandfec=1: the peer wants to receive in-band FEC (RFC 7587 §6.1).
	OpusFEC bool
}

// BuildOffer writes our plain RTP offer (PROTOCOL.md §13.3): the codecs in the
// requested order with their default payload types (PCMU 0, PCMA 8, G722 9,
// opus 111), then telephone-event with fmtp 0-16, one entry per distinct clock
// of the offered codecs (D12): /8000 at PT 101 when any 8 kHz-clock codec is
// offered, /48000 for Opus at PT 110 (101 when it is the only entry; an offer
// with no codec carries /8000 at 101). Then the crypto lines, a=sendrecv (the
// routing direction never changes it, §4), a=rtcp-mux when asked, a=ptime:20.
func BuildOffer(p OfferParams) ([]byte, error) {
	codecs, err := ResolveCodecs(p.Codecs)
	if err != nil {
		return nil, fmt.Errorf("building SDP offer: %w", err)
	}
	if err := checkCommon(p.MediaIP, p.Port, p.Crypto); err != nil {
		return nil, fmt.Errorf("building SDP offer: %w", err)
	}
	var formats []string
	var attrs []psdp.Attribute
	has8k, has48k := false, false
	for _, name := range codecs {
		c, _ := LookupCodec(name) // resolved above
		formats = append(formats, strconv.Itoa(int(c.PayloadType)))
		attrs = appendCodec(attrs, c, c.PayloadType, OpusFmtp)
		if c.ClockRate == 8000 {
			has8k = true
		} else {
			has48k = true
		}
	}
	var teClocks []uint32
	if has8k || !has48k {
		teClocks = append(teClocks, 8000)
	}
	if has48k {
		teClocks = append(teClocks, 48000)
	}
	for i, clock := range teClocks {
		pt := TelephoneEventPT
		if i > 0 {
			pt = TelephoneEventSecondPT
		}
		formats = append(formats, strconv.Itoa(int(pt)))
		attrs = appendTelephoneEvent(attrs, pt, clock)
	}
	attrs = appendCrypto(attrs, p.Crypto)
	attrs = append(attrs, psdp.NewPropertyAttribute(string(SendRecv)))
	if p.RTCPMux {
		attrs = append(attrs, psdp.NewPropertyAttribute("rtcp-mux"))
	}
	attrs = append(attrs, psdp.NewAttribute("ptime", ptime))

	profile := ProfileAVP
	if len(p.Crypto) > 0 {
		profile = ProfileSAVP
	}
	md := &psdp.MediaDescription{
		MediaName: psdp.MediaName{
			Media:   "audio",
			Port:    psdp.RangedPort{Value: int(p.Port)},
			Protos:  strings.Split(string(profile), "/"),
			Formats: formats,
		},
		Attributes: attrs,
	}
	out, err := marshal(p.EndpointID, p.Version, p.MediaIP, []*psdp.MediaDescription{md})
	if err != nil {
		return nil, fmt.Errorf("building SDP offer: %w", err)
	}
	return out, nil
}

// BuildAnswer writes our answer to a plain RTP offer and reports what was
// negotiated.
//
// Codec choice: with no preference list, the first supported codec of the
// offer in m= line order; with one (D10), the offer's codec that comes
// earliest in our list, ties (the same codec at two payload types) going to
// the offer's order; codecs outside the list are never chosen. The answer
// lists only that codec, with the offerer's payload type, followed by the
// offer's first telephone-event entry whose clock matches the codec's (D12),
// if there is one; none is added when the offer had none.
//
// a=rtcp-mux only when offered (D8); a=ptime:20; the direction attribute
// mirrors the offer's (RFC 3264 §6.1). Profile: RTP/AVP, or RTP/SAVP with
// crypto; the F (feedback) variant when the offer's profile has it. Opus gets
// our fmtp with useinbandfec echoing the offer's. Every other m= line of the
// offer is answered as rejected (port 0), so the answer has as many m= lines
// as the offer (RFC 3264 §6).
//
// No usable codec gives a *NoCommonCodecError.
func BuildAnswer(offer *Description, p AnswerParams) ([]byte, Negotiated, error) {
	if offer == nil {
		return nil, Negotiated{}, errors.New("building SDP answer: no offer")
	}
	if offer.Profile.DTLS() {
		return nil, Negotiated{}, fmt.Errorf("building SDP answer: offer profile %s needs DTLS-SRTP, not a plain RTP leg", offer.Profile)
	}
	if err := checkCommon(p.MediaIP, p.Port, p.Crypto); err != nil {
		return nil, Negotiated{}, fmt.Errorf("building SDP answer: %w", err)
	}
	chosen, err := chooseCodec(offer, p.Codecs)
	if err != nil {
		return nil, Negotiated{}, err
	}
	spec, _ := LookupCodec(chosen.Name) // chosen is supported
	n := Negotiated{
		Codec:           spec.Name,
		PayloadType:     chosen.PT,
		ClockRate:       spec.ClockRate,
		RemoteAddr:      offer.Addr,
		RemoteRTCPAddr:  offer.RTCPAddr,
		RTCPMux:         offer.RTCPMux,
		RemoteProfile:   offer.Profile,
		RemoteDirection: offer.Direction,
		OpusFEC:         spec.Name == Opus && offer.OpusFEC(chosen.PT),
	}

	formats := []string{strconv.Itoa(int(chosen.PT))}
	fec := "0"
	if n.OpusFEC {
		fec = "1"
	}
	attrs := appendCodec(nil, spec, chosen.PT,
		"minptime=10;useinbandfec="+fec+";stereo=0;sprop-stereo=0")
	for _, te := range offer.TelephoneEvents {
		if te.ClockRate == spec.ClockRate {
			n.TelephoneEventPT, n.TelephoneEventClock = te.PT, te.ClockRate
			formats = append(formats, strconv.Itoa(int(te.PT)))
			attrs = appendTelephoneEvent(attrs, te.PT, te.ClockRate)
			break
		}
	}
	attrs = appendCrypto(attrs, p.Crypto)
	attrs = append(attrs, psdp.NewPropertyAttribute(string(offer.Direction.Mirror())))
	if offer.RTCPMux {
		attrs = append(attrs, psdp.NewPropertyAttribute("rtcp-mux"))
	}
	attrs = append(attrs, psdp.NewAttribute("ptime", ptime))

	profile := ProfileAVP
	switch {
	case len(p.Crypto) > 0 && offer.Profile.Feedback():
		profile = ProfileSAVPF
	case len(p.Crypto) > 0:
		profile = ProfileSAVP
	case offer.Profile.Feedback():
		profile = ProfileAVPF
	}
	ours := &psdp.MediaDescription{
		MediaName: psdp.MediaName{
			Media:   "audio",
			Port:    psdp.RangedPort{Value: int(p.Port)},
			Protos:  strings.Split(string(profile), "/"),
			Formats: formats,
		},
		Attributes: attrs,
	}
	var mds []*psdp.MediaDescription
	for _, ml := range offer.MediaLines {
		if ml.Active {
			mds = append(mds, ours)
			continue
		}
		format := ml.Format
		if format == "" {
			format = "0" // RFC 4566 §5.14 wants at least one format
		}
		mds = append(mds, &psdp.MediaDescription{MediaName: psdp.MediaName{
			Media:   ml.Media,
			Port:    psdp.RangedPort{Value: 0},
			Protos:  strings.Split(ml.Proto, "/"),
			Formats: []string{format},
		}})
	}
	if !containsMD(mds, ours) { // a Description built by hand, without MediaLines
		mds = []*psdp.MediaDescription{ours}
	}
	out, err := marshal(p.EndpointID, p.Version, p.MediaIP, mds)
	if err != nil {
		return nil, Negotiated{}, fmt.Errorf("building SDP answer: %w", err)
	}
	return out, n, nil
}

func containsMD(mds []*psdp.MediaDescription, md *psdp.MediaDescription) bool {
	for _, m := range mds {
		if m == md {
			return true
		}
	}
	return false
}

// chooseCodec picks the answer codec, see BuildAnswer.
func chooseCodec(offer *Description, prefs []string) (Format, error) {
	if prefs == nil {
		if len(offer.Codecs) > 0 {
			return offer.Codecs[0], nil
		}
		return Format{}, noCommonCodec(offer, SupportedCodecs())
	}
	names, err := ResolveCodecs(prefs)
	if err != nil {
		return Format{}, fmt.Errorf("building SDP answer: %w", err)
	}
	for _, name := range names {
		for _, c := range offer.Codecs {
			if c.Name == name {
				return c, nil
			}
		}
	}
	return Format{}, noCommonCodec(offer, names)
}

func noCommonCodec(offer *Description, supported []string) error {
	offered := make([]string, 0, len(offer.Formats))
	for _, f := range offer.Formats {
		offered = append(offered, f.Label())
	}
	return &NoCommonCodecError{Offered: offered, Supported: supported}
}

// checkCommon validates what offers and answers share.
func checkCommon(ip netip.Addr, port uint16, crypto []string) error {
	if !ip.IsValid() {
		return errors.New("media IP is not set")
	}
	if ip.Zone() != "" {
		return fmt.Errorf("media IP %s has a zone, which SDP cannot carry", ip)
	}
	if port == 0 {
		return errors.New("RTP port is 0")
	}
	for i, c := range crypto {
		if strings.TrimSpace(c) == "" || strings.ContainsAny(c, "\r\n") {
			return fmt.Errorf("crypto value %d is empty or spans lines", i+1)
		}
	}
	return nil
}

// appendCodec adds the rtpmap (and Opus fmtp) lines of codec c at payload type pt.
func appendCodec(attrs []psdp.Attribute, c CodecSpec, pt uint8, opusFmtp string) []psdp.Attribute {
	m := strconv.Itoa(int(pt)) + " " + c.Name + "/" + strconv.FormatUint(uint64(c.ClockRate), 10)
	if c.Channels > 0 {
		m += "/" + strconv.Itoa(int(c.Channels))
	}
	attrs = append(attrs, psdp.NewAttribute("rtpmap", m))
	if c.Name == Opus {
		attrs = append(attrs, psdp.NewAttribute("fmtp", strconv.Itoa(int(pt))+" "+opusFmtp))
	}
	return attrs
}

// appendTelephoneEvent adds an RFC 4733 telephone-event entry with events 0-16.
func appendTelephoneEvent(attrs []psdp.Attribute, pt uint8, clock uint32) []psdp.Attribute {
	p := strconv.Itoa(int(pt))
	return append(attrs,
		psdp.NewAttribute("rtpmap", p+" "+TelephoneEvent+"/"+strconv.FormatUint(uint64(clock), 10)),
		psdp.NewAttribute("fmtp", p+" "+telephoneEventFmtp))
}

func appendCrypto(attrs []psdp.Attribute, crypto []string) []psdp.Attribute {
	for _, c := range crypto {
		attrs = append(attrs, psdp.NewAttribute("crypto", strings.TrimSpace(c)))
	}
	return attrs
}

// marshal wraps media sections in our session part:
// o=rtpbridge <N> <version> IN IP4|IP6 <ip>, s=rtpbridge, c=, t=0 0 (CRLF lines).
func marshal(id uuid.UUID, version uint64, ip netip.Addr, mds []*psdp.MediaDescription) ([]byte, error) {
	if version == 0 {
		version = 1
	}
	ip = ip.Unmap()
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	sd := psdp.SessionDescription{
		Version: 0,
		Origin: psdp.Origin{
			Username:       "rtpbridge",
			SessionID:      binary.BigEndian.Uint64(id[8:]),
			SessionVersion: version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ip.String(),
		},
		SessionName: "rtpbridge",
		ConnectionInformation: &psdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &psdp.Address{Address: ip.String()},
		},
		TimeDescriptions:  []psdp.TimeDescription{{Timing: psdp.Timing{StartTime: 0, StopTime: 0}}},
		MediaDescriptions: mds,
	}
	return sd.Marshal()
}

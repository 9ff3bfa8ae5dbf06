package sdp

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Limits on what [Parse] considers, so hostile input costs bounded work
// (PROTOCOL.md §12 fixes the two 32s; the others are far above what real
// peers send: a SIP offer has a few dozen lines and one to three m= lines).
const (
	maxLines        = 4096 // non-empty lines; more is an error
	maxMediaLines   = 16   // m= lines of any kind; more is an error
	maxPayloadTypes = 32   // m= line payload types, merged over audio sections
	maxRtpmaps      = 32   // a=rtpmap lines read; later ones are ignored
	maxFmtps        = 32   // a=fmtp lines read; later ones are ignored
	maxCryptos      = 32   // a=crypto lines read; later ones are ignored
	maxPtime        = 1000 // a=ptime above this (ms) is ignored as nonsense
)

// Description is what rtpbridge reads from a peer's plain RTP offer or answer
// (PROTOCOL.md §13.1).
//
// Several m=audio sections are merged: their payload types form one list, in
// order, without duplicates (sections with port 0 other than the active one
// are disabled or rejected streams and are left out). Port, profile, connection address and the
// attributes rtcp-mux, ptime, crypto and direction come from the last usable
// audio section (the "active" one), so that one section's crypto is never
// paired with another's profile.
type Description struct {
	// Addr is the remote RTP address: the active section's c= (else the
	// session c=) with its m= port. It is the zero, invalid AddrPort when the
	// port is 0, there is no c= or c= is the unspecified address (0.0.0.0,
	// the old hold convention of RFC 3264 §8.4); the leg may still learn the
	// address from inbound packets (§14).
	Addr netip.AddrPort
	// Port is the active section's m= port (0 = stream disabled or unknown).
	Port uint16
	// Profile is the active section's transport profile.
	Profile Profile
	// RTCPMux is set when the active section has a=rtcp-mux (RFC 5761 §5.1.1).
	RTCPMux bool
	// RTCPAddr is the active section's a=rtcp address (RFC 3605): where the
	// peer wants RTCP when it is not RTP port + 1. Zero when absent, unusable
	// or when the RTP address is unknown.
	RTCPAddr netip.AddrPort
	// Ptime is a=ptime in milliseconds (media level, else session level); 0 when absent.
	Ptime int
	// Direction is the media-level direction attribute, else the session-level
	// one, else sendrecv (RFC 3264 §5.1).
	Direction Direction
	// Formats lists every payload type of the merged m= lines (at most 32) in
	// m= line order, supported or not.
	Formats []Format
	// Codecs lists the supported audio codecs of Formats, in m= line order,
	// with the offerer's payload types.
	Codecs []Format
	// TelephoneEvents lists the usable telephone-event entries of Formats with
	// their clock rates, in m= line order.
	TelephoneEvents []Format
	// Fmtp maps a payload type to its a=fmtp parameter text (first line wins).
	Fmtp map[uint8]string
	// Crypto holds the active section's a=crypto values, raw and in order:
	// everything after "a=crypto:" (RFC 4568 §9.1). Package sdes reads them.
	Crypto []string
	// MediaLines lists every m= line of the SDP in order, so an answer can
	// keep the offer's m= line count (RFC 3264 §6).
	MediaLines []MediaLine
}

// MediaLine is one m= line of a parsed SDP, audio or not.
type MediaLine struct {
	Media  string // media type token: audio, video, image, application, …
	Port   uint16
	Proto  string // transport protocol token as written
	Format string // first format token ("" if none): echoed when rejecting the stream
	// Active marks the m=audio section that the Description's address,
	// profile and attributes come from. Exactly one line is active.
	Active bool
}

// OpusFEC reports whether the fmtp of payload type pt asks for Opus in-band
// FEC (useinbandfec=1, RFC 7587 §6.1).
func (d *Description) OpusFEC(pt uint8) bool {
	v, ok := fmtpParam(d.Fmtp[pt], "useinbandfec")
	return ok && v == "1"
}

// CheckSize rejects an SDP longer than maxBytes with [ErrTooLarge], whose text
// is exactly "SDP too large" (PROTOCOL.md §6: the limit is max_sdp_size_kb × 1024).
func CheckSize(raw []byte, maxBytes int) error {
	if len(raw) > maxBytes {
		return ErrTooLarge
	}
	return nil
}

// IsWebRTC reports whether any line of raw starts with "a=fingerprint:" or
// "a=ice-ufrag:", which makes an offer a WebRTC one (PROTOCOL.md §6), whatever
// its m= lines say.
func IsWebRTC(raw []byte) bool {
	for rest := raw; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		if bytes.HasPrefix(line, []byte("a=fingerprint:")) || bytes.HasPrefix(line, []byte("a=ice-ufrag:")) {
			return true
		}
	}
	return false
}

// Parse reads a plain RTP offer or answer. Only m=audio sections with an RTP
// profile are read; the rest are recorded in MediaLines and otherwise ignored.
// An SDP without such a section is an error, as is any syntax error; every
// error wraps [ErrInvalid].
//
// Before pion/sdp parses it, the input is rewritten into a canonical form:
// any of CRLF, LF or CR ends a line (pion needs one after the last line too);
// blank lines and surrounding blanks go; o=, s= and t= are replaced by fixed
// values (we use none of them, and pion rejects SDPs that lack one); i=, u=, e=,
// p=, b=, k=, r= and z= are dropped (pion rejects unknown bandwidth types and
// bad URIs, and we use none of them); session c= and a= lines are put in
// RFC 4566 order whatever the input order was; non-audio sections are dropped
// (pion rejects m=image, used for T.38); and only the attributes read here are
// kept, up to the caps above.
func Parse(raw []byte) (*Description, error) {
	n, err := normalise(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var sd psdp.SessionDescription
	if err := sd.UnmarshalString(n.text()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d, err := extract(&sd, n)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return d, nil
}

// section is one m= section of the input after normalisation.
type section struct {
	line   MediaLine
	usable bool     // m=audio with an RTP profile: handed to pion
	mline  string   // canonical m= line for pion
	conn   string   // first c= line of the section, "" if none
	attrs  []string // kept a= lines, keys in lower case
}

// normalised is the canonical, bounded form of an input SDP.
type normalised struct {
	sessConn  string
	sessAttrs []string
	sections  []*section
	usable    int
}

// text renders the canonical SDP handed to pion, in RFC 4566 §5 order.
func (n *normalised) text() string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\n")
	if n.sessConn != "" {
		b.WriteString(n.sessConn + "\r\n")
	}
	b.WriteString("t=0 0\r\n")
	for _, a := range n.sessAttrs {
		b.WriteString(a + "\r\n")
	}
	for _, s := range n.sections {
		if !s.usable {
			continue
		}
		b.WriteString(s.mline + "\r\n")
		if s.conn != "" {
			b.WriteString(s.conn + "\r\n")
		}
		for _, a := range s.attrs {
			b.WriteString(a + "\r\n")
		}
	}
	return b.String()
}

// normalise splits raw into lines and keeps, in canonical order, what Parse reads.
func normalise(raw []byte) (*normalised, error) {
	n := &normalised{}
	var cur *section
	var rtpmaps, fmtps, cryptos int
	lineNo, seenV := 0, false
	for rest := raw; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 {
			continue
		}
		lineNo++
		if lineNo > maxLines {
			return nil, fmt.Errorf("more than %d lines", maxLines)
		}
		if !seenV {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 BOM
			if string(line) != "v=0" {
				return nil, fmt.Errorf("line 1: expected v=0, got %q", clip(line))
			}
			seenV = true
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, fmt.Errorf("line %d: expected <type>=<value>, got %q", lineNo, clip(line))
		}
		val := line[2:]
		switch line[0] {
		case 'v':
			return nil, fmt.Errorf("line %d: second v= line", lineNo)
		case 'o', 's', 'i', 'u', 'e', 'p', 'b', 't', 'r', 'z', 'k':
			// Not used; see Parse.
		case 'c':
			switch {
			case cur == nil && n.sessConn == "":
				n.sessConn = "c=" + string(val)
			case cur != nil && cur.usable && cur.conn == "":
				cur.conn = "c=" + string(val)
			}
		case 'a':
			if a, ok := keepAttribute(val, cur, &rtpmaps, &fmtps, &cryptos); ok {
				if cur == nil {
					n.sessAttrs = append(n.sessAttrs, a)
				} else {
					cur.attrs = append(cur.attrs, a)
				}
			}
		case 'm':
			if len(n.sections) == maxMediaLines {
				return nil, fmt.Errorf("more than %d m= lines", maxMediaLines)
			}
			s, err := newSection(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			n.sections = append(n.sections, s)
			if s.usable {
				n.usable++
			}
			cur = s
		default:
			return nil, fmt.Errorf("line %d: unknown line type %q", lineNo, clip(line[:1]))
		}
	}
	if !seenV {
		return nil, fmt.Errorf("empty")
	}
	if n.usable == 0 {
		return nil, fmt.Errorf("no m=audio section with an RTP profile")
	}
	return n, nil
}

// keepAttribute decides whether an a= line is read, and returns it with its
// key in lower case. Session level: direction and ptime. Usable audio
// sections: also rtpmap, fmtp, crypto (each capped) and rtcp-mux.
func keepAttribute(val []byte, cur *section, rtpmaps, fmtps, cryptos *int) (string, bool) {
	keyB, rest, hasValue := bytes.Cut(val, []byte(":"))
	if len(keyB) > 16 { // longer than any key we keep
		return "", false
	}
	key := strings.ToLower(string(keyB))
	line := func() string {
		if hasValue {
			return "a=" + key + ":" + string(rest)
		}
		return "a=" + key
	}
	if Direction(key).Valid() || key == "ptime" {
		if cur == nil || cur.usable {
			return line(), true
		}
		return "", false
	}
	if cur == nil || !cur.usable {
		return "", false
	}
	counter, limit := (*int)(nil), 0
	switch key {
	case "rtcp-mux", "rtcp":
		return line(), true
	case "rtpmap":
		counter, limit = rtpmaps, maxRtpmaps
	case "fmtp":
		counter, limit = fmtps, maxFmtps
	case "crypto":
		counter, limit = cryptos, maxCryptos
	default:
		return "", false
	}
	if *counter >= limit {
		return "", false
	}
	*counter++
	return line(), true
}

// newSection reads an m= line value: "<media> <port>[/<n>] <proto> <fmt> …"
// (RFC 4566 §5.14). Only the first maxPayloadTypes formats are kept.
func newSection(val []byte) (*section, error) {
	fields := fieldsN(string(val), 3+maxPayloadTypes)
	if len(fields) < 3 {
		return nil, fmt.Errorf("m= line %q has fewer than three fields", clip(val))
	}
	media, portText, proto := fields[0], fields[1], fields[2]
	if !isMediaToken(media) || !isMediaToken(proto) {
		return nil, fmt.Errorf("m= line %q: bad media or protocol", clip(val))
	}
	portOnly, _, _ := strings.Cut(portText, "/")
	port, err := strconv.ParseUint(portOnly, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("m= line %q: bad port %q", clip(val), clip([]byte(portText)))
	}
	s := &section{line: MediaLine{Media: media, Port: uint16(port), Proto: proto}}
	if len(fields) > 3 && isMediaToken(fields[3]) {
		s.line.Format = fields[3]
	}
	s.usable = media == "audio" && knownProfile(Profile(proto))
	if s.usable {
		s.mline = "m=" + strings.Join(fields, " ")
	}
	return s, nil
}

// fieldsN splits s on blanks like strings.Fields but returns at most max
// fields, so a hostile m= line with a million formats costs nothing extra.
func fieldsN(s string, limit int) []string {
	var out []string
	for len(out) < limit {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// isMediaToken accepts the characters of RFC 4566 tokens that we may echo
// back in a rejected m= line.
func isMediaToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '/' || c == '-' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

// clip shortens input quoted in error messages.
func clip(b []byte) string {
	const maxQuote = 40
	if len(b) > maxQuote {
		return string(b[:maxQuote]) + "…"
	}
	return string(b)
}

// extract builds the Description from pion's parse of the canonical text.
func extract(sd *psdp.SessionDescription, n *normalised) (*Description, error) {
	if len(sd.MediaDescriptions) != n.usable {
		return nil, fmt.Errorf("parsed %d audio sections, expected %d", len(sd.MediaDescriptions), n.usable)
	}
	d := &Description{Direction: SendRecv, Fmtp: make(map[uint8]string)}
	for _, s := range n.sections {
		d.MediaLines = append(d.MediaLines, s.line)
	}
	activeLine := -1
	for i, s := range n.sections {
		if s.usable {
			activeLine = i
		}
	}
	d.MediaLines[activeLine].Active = true

	maps := make(map[uint8]rtpmap)
	seen := make(map[uint8]bool)
	var pts []uint8
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 && i != len(sd.MediaDescriptions)-1 {
			// A disabled stream (RFC 3264 §8.2), or one rejected in an
			// answer (§6), offers nothing to merge.
			continue
		}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				if pt, rm, ok := parseRtpmap(a.Value); ok {
					if _, dup := maps[pt]; !dup {
						maps[pt] = rm
					}
				}
			case "fmtp":
				ptText, params, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
				if pt, ok := parsePT(ptText); ok {
					if _, dup := d.Fmtp[pt]; !dup {
						d.Fmtp[pt] = strings.TrimSpace(params)
					}
				}
			}
		}
		for _, f := range md.MediaName.Formats {
			pt, ok := parsePT(f)
			if !ok || seen[pt] || len(pts) == maxPayloadTypes {
				continue
			}
			seen[pt] = true
			pts = append(pts, pt)
		}
	}
	for _, pt := range pts {
		rm, ok := maps[pt]
		f := classify(pt, rm, ok)
		d.Formats = append(d.Formats, f)
		switch {
		case f.IsTelephoneEvent():
			d.TelephoneEvents = append(d.TelephoneEvents, f)
		case f.Supported:
			d.Codecs = append(d.Codecs, f)
		}
	}

	for _, a := range sd.Attributes {
		switch {
		case Direction(a.Key).Valid():
			d.Direction = Direction(a.Key)
		case a.Key == "ptime":
			d.Ptime = parsePtime(a.Value, d.Ptime)
		}
	}
	active := sd.MediaDescriptions[len(sd.MediaDescriptions)-1]
	d.Port = uint16(active.MediaName.Port.Value) // pion checked 0..65535
	d.Profile = Profile(strings.Join(active.MediaName.Protos, "/"))
	var rtcpAttr string
	for _, a := range active.Attributes {
		switch {
		case Direction(a.Key).Valid():
			d.Direction = Direction(a.Key)
		case a.Key == "ptime":
			d.Ptime = parsePtime(a.Value, d.Ptime)
		case a.Key == "rtcp-mux":
			d.RTCPMux = true
		case a.Key == "rtcp":
			rtcpAttr = a.Value
		case a.Key == "crypto":
			d.Crypto = append(d.Crypto, a.Value)
		}
	}

	conn := active.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn != nil && conn.Address != nil {
		// Strip a multicast TTL or count ("224.2.1.1/127", RFC 4566 §5.7).
		text, _, _ := strings.Cut(conn.Address.Address, "/")
		addr, err := netip.ParseAddr(text)
		if err != nil {
			return nil, fmt.Errorf("connection address %q is not an IP address", clip([]byte(text)))
		}
		addr = addr.Unmap()
		if !addr.IsUnspecified() && d.Port != 0 {
			d.Addr = netip.AddrPortFrom(addr, d.Port)
		}
	}
	if rtcpAttr != "" && d.Addr.IsValid() {
		d.RTCPAddr = parseRTCPAttr(rtcpAttr, d.Addr.Addr())
	}
	return d, nil
}

// parseRTCPAttr reads a=rtcp:<port> [IN IP4|IP6 <address>] (RFC 3605 §2.1); the
// address defaults to the RTP one. Anything unusable gives the zero AddrPort: RTCP
// then goes to the RTP port + 1 as if the attribute were absent.
func parseRTCPAttr(v string, rtpAddr netip.Addr) netip.AddrPort {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}
	}
	addr := rtpAddr
	if len(f) >= 4 && strings.EqualFold(f[1], "IN") {
		a, err := netip.ParseAddr(f[3])
		if err != nil || a.Unmap().IsUnspecified() {
			return netip.AddrPort{}
		}
		addr = a.Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port))
}

// parsePtime reads an a=ptime value, keeping old when it is not a sane number.
func parsePtime(v string, old int) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > maxPtime {
		return old
	}
	return n
}

package session

import (
	"math/rand/v2"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/dtmf"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// A session's digits and fax tones (PROTOCOL.md §16, §31): RFC 4733 detection on every
// telephone-event packet a leg sends, in-band detection and fax tone detection as audio taps
// on the legs' shared decode, and injection of one digit at a time.

// Sources of a dtmf event (§31).
const (
	sourceRFC4733 = "rfc4733"
	sourceInband  = "inband"
)

// Values of inband_dtmf (§31).
const (
	inbandAuto   = "auto"
	inbandAlways = "always"
	inbandOff    = "off"
)

// inbandIdle is how long a leg's audio may stop before an in-band digit being heard is taken
// as ended (its RTP stopped, so no concealed audio comes either).
const inbandIdle = 200 * time.Millisecond

// rfcShadow is how long after a telephone-event packet an in-band digit on the same leg is
// taken for the tone of that event (phones that send both) and not reported again.
const rfcShadow = time.Second

// dtmfState is the session's DTMF and fax work; owned by the session loop.
type dtmfState struct {
	legs   map[*leg]*legTones
	inject *injection // the one injection in progress (§16), or nil
}

// legTones is one leg's detectors.
type legTones struct {
	rfc    *dtmf.Detector // RFC 4733; nil until the leg's first telephone-event
	rfcAt  time.Time      // the last telephone-event packet
	inband *inbandTap     // in-band detection, when inband_dtmf applies to the leg
	fax    *faxTap        // fax tone detection, between fax_detect.start and stop
}

// tones returns l's detectors, creating the record.
func (s *Session) tones(l *leg) *legTones {
	if s.dtmf.legs == nil {
		s.dtmf.legs = make(map[*leg]*legTones)
	}
	t := s.dtmf.legs[l]
	if t == nil {
		t = &legTones{}
		s.dtmf.legs[l] = t
	}
	return t
}

// alive reports whether l is still one of the session's legs (not removed or transferred).
func (m *mediaState) alive(l *leg) bool { return m.byEP[l.ep] == l }

// eventClock is the clock of l's telephone-event stream: the negotiated entry's, else its
// codec's, else 8000 (§16).
func eventClock(l *leg) uint32 {
	if l.rtp != nil {
		if neg, ok := l.rtp.Negotiated(); ok && neg.TelephoneEventClock != 0 {
			return neg.TelephoneEventClock
		}
	}
	if l.codec.Valid() {
		return uint32(l.codec.ClockRate())
	}
	return 8000
}

// onDTMFPacket sees every telephone-event packet a leg receives, before it is forwarded
// (RFC 4733 detection, PROTOCOL.md §16).
func (m *mediaState) onDTMFPacket(l *leg, in *endpoint.Inbound, now time.Time) {
	t := m.s.tones(l)
	clock := eventClock(l)
	if t.rfc == nil {
		t.rfc = dtmf.NewDetector(clock)
	} else {
		t.rfc.SetClock(clock)
	}
	t.rfcAt = now
	p := dtmf.Packet{SSRC: in.Header.SSRC, Timestamp: in.Header.Timestamp, Marker: in.Header.Marker, Payload: in.Payload}
	for _, r := range t.rfc.Packet(p, now) {
		m.s.reportDigit(l, r, clock, sourceRFC4733)
	}
}

// audioPaused reports whether audio to dst is held back now (a digit being injected into it,
// §16), so the far end never hears a tone and an event at once.
func (m *mediaState) audioPaused(dst *leg, now time.Time) bool {
	inj := m.s.dtmf.inject
	return inj != nil && inj.dst == dst
}

// dtmfEvent is the data of a dtmf event (§8, §31).
type dtmfEvent struct {
	EndpointID string `json:"endpoint_id"`
	Digit      string `json:"digit"`
	DurationMS uint32 `json:"duration_ms"`
	Source     string `json:"source"`
}

// reportDigit emits one detected digit and counts it.
func (s *Session) reportDigit(l *leg, r dtmf.Report, clock uint32, source string) {
	s.mgr.metrics.DTMFEvents.Inc()
	s.emit(protocol.EventDTMF, dtmfEvent{
		EndpointID: l.ep.ID().String(), Digit: string(rune(r.Digit)), DurationMS: r.DurationMS(clock), Source: source,
	})
}

// dtmfTick runs with the session's timers: digits whose end packets were lost (3 s), in-band
// digits whose audio stopped, in-band taps for legs that gained or lost telephone-event, and
// the forgetting of legs that left.
func (s *Session) dtmfTick(now time.Time) {
	for l, t := range s.dtmf.legs {
		if !s.media.alive(l) {
			if t.inband != nil {
				t.inband.stop()
			}
			delete(s.dtmf.legs, l)
			continue
		}
		if t.rfc != nil {
			for _, r := range t.rfc.Poll(now) {
				s.reportDigit(l, r, eventClock(l), sourceRFC4733)
			}
		}
		if t.inband != nil && now.Sub(t.inband.last) >= inbandIdle {
			t.inband.flush(now)
		}
	}
	if inj := s.dtmf.inject; inj != nil && !s.media.alive(inj.dst) {
		s.endInjection()
	}
}

// wantsInband reports whether inband_dtmf gives l in-band detection (§31): RTP and WebRTC legs
// with a codec; with "auto" only those whose negotiation has no telephone-event.
func (s *Session) wantsInband(l *leg) bool {
	mode := s.mgr.opts.InbandDTMF
	if mode == inbandOff || l.rtp == nil || !l.codec.Valid() {
		return false
	}
	neg, ok := l.rtp.Negotiated()
	if !ok {
		return false
	}
	return mode == inbandAlways || neg.TelephoneEventPT == 0
}

// prepareInband gives l its in-band tap, or takes it away, as inband_dtmf says (wantsInband),
// without rebuilding the routing table; it reports whether l's taps changed. rebuild calls it
// for each leg once the leg's codec is known and before the taps' rates are gathered, so a
// leg has its tap from its first packet and its decode is set up once.
func (s *Session) prepareInband(l *leg) bool {
	want := s.wantsInband(l)
	t := s.dtmf.legs[l]
	switch {
	case want && (t == nil || t.inband == nil):
		t = s.tones(l)
		t.inband = &inbandTap{s: s, l: l, det: dtmf.NewInband(inbandRate), t: t}
		l.taps = append(l.taps, t.inband)
		return true
	case !want && t != nil && t.inband != nil:
		for i, x := range l.taps {
			if x == AudioTap(t.inband) {
				l.taps = append(l.taps[:i], l.taps[i+1:]...)
				break
			}
		}
		t.inband.flush(time.Now())
		t.inband = nil
		return true
	}
	return false
}

// inbandRate is the rate in-band and fax detection run at (the shared decode resamples).
const inbandRate = 8000

// inbandTap runs in-band DTMF detection on one leg's decoded audio (AudioTap).
type inbandTap struct {
	s    *Session
	l    *leg
	t    *legTones
	det  *dtmf.Inband
	out  []dtmf.Report
	last time.Time // the last audio
}

func (t *inbandTap) TapRate() int { return inbandRate }

func (t *inbandTap) Audio(pcm []int16, now time.Time) {
	t.last = now
	t.out = t.det.Process(t.out[:0], pcm)
	t.report(now)
}

// flush ends a digit being heard (the audio stopped).
func (t *inbandTap) flush(now time.Time) {
	t.out = t.det.Flush(t.out[:0])
	t.report(now)
}

// stop forgets the tap (its leg is gone): nothing more is reported.
func (t *inbandTap) stop() { t.out = t.out[:0] }

func (t *inbandTap) report(now time.Time) {
	for _, r := range t.out {
		// A phone that sends telephone-events and leaves the tone in its audio too is heard
		// once, as its events say.
		if t.t.rfc != nil && (t.t.rfc.Open() || now.Sub(t.t.rfcAt) < rfcShadow) {
			continue
		}
		t.s.reportDigit(t.l, r, inbandRate, sourceInband)
	}
}

// faxTap runs fax tone detection on one leg's decoded audio (AudioTap).
type faxTap struct {
	s   *Session
	l   *leg
	det *dtmf.Fax
	out []dtmf.FaxTone
}

func (t *faxTap) TapRate() int { return inbandRate }

func (t *faxTap) Audio(pcm []int16, now time.Time) {
	t.out = t.det.Process(t.out[:0], pcm)
	for _, tone := range t.out {
		name := protocol.EventFaxCNGDetected
		if tone == dtmf.CED {
			name = protocol.EventFaxCEDDetected
		}
		t.s.emit(name, map[string]string{"endpoint_id": t.l.ep.ID().String()})
	}
}

// faxDetectActive lists the endpoints with fax detection on, for session.info (§31).
func (s *Session) faxDetectActive() []any {
	out := []any{}
	for _, l := range s.media.legs {
		if t := s.dtmf.legs[l]; t != nil && t.fax != nil {
			out = append(out, l.ep.ID().String())
		}
	}
	return out
}

// injection is a digit being sent to one leg (§16): the packets of dtmf.Injection on the
// leg's own stream (D14), paced by a timer whose callback runs on the session loop.
type injection struct {
	s       *Session
	dst     *leg
	seq     dtmf.Injection
	next    int       // the next packet to send
	start   time.Time // when the first was sent
	key     uint64    // the injection's source identity on dst's OutStream
	seqNo   uint16    // the sequence number of the first packet, before OutStream maps it
	ts      uint32    // the RTP timestamp of every packet, before OutStream maps it
	timer   *time.Timer
	sent    bool // a packet went out: the leg's stream knows the injection's source
	payload [dtmf.PayloadSize]byte
}

// startInjection sends the first packet of j to l now and schedules the rest.
func (s *Session) startInjection(l *leg, j dtmf.Injection, now time.Time) {
	m := s.media
	m.nextIndex++
	inj := &injection{s: s, dst: l, seq: j, start: now, key: uint64(m.nextIndex) << 32,
		seqNo: uint16(rand.Uint32()), ts: rand.Uint32()}
	s.dtmf.inject = inj
	s.injectStep(inj, now)
}

// injectStep sends the packets of inj that are due and schedules the next. An injection whose
// leg is gone (removed, transferred) is cancelled (§6, §22).
func (s *Session) injectStep(inj *injection, now time.Time) {
	if s.dtmf.inject != inj {
		return
	}
	if !s.media.alive(inj.dst) {
		s.endInjection()
		return
	}
	for inj.next < inj.seq.Len() && !now.Before(inj.start.Add(inj.seq.Due(inj.next))) {
		s.sendInjected(inj, inj.next, now)
		inj.next++
	}
	if inj.next == inj.seq.Len() {
		s.closeInjection(inj, now)
		s.endInjection()
		return
	}
	inj.timer = time.AfterFunc(inj.start.Add(inj.seq.Due(inj.next)).Sub(now), func() {
		s.media.Post(func() { s.injectStep(inj, time.Now()) })
	})
}

// sendInjected sends packet i of inj on its leg's stream. Injected packets are sent to the
// target only and not recorded (§16).
func (s *Session) sendInjected(inj *injection, i int, now time.Time) {
	dst := inj.dst.rtp
	if !dst.CanSend() {
		return
	}
	neg, _ := dst.Negotiated()
	ev, marker := inj.seq.Packet(i)
	h := s.media.header(neg.TelephoneEventPT)
	h.SequenceNumber, h.Timestamp, h.Marker = dst.Out().Map(inj.key, inj.seqNo+uint16(i), inj.ts, marker, now)
	_, _ = dst.SendRTP(h, ev.Append(inj.payload[:0]), now)
	inj.sent = true
}

// closeInjection moves the leg's stream timeline past the event, so the audio that resumes
// has a timestamp after the event's span rather than inside it (the event's packets all carry
// its start timestamp): the stream takes the event's last sequence number again with the
// timestamp of its span's end. Nothing is sent and no sequence number is used up.
func (s *Session) closeInjection(inj *injection, now time.Time) {
	if !inj.sent {
		return
	}
	span := uint32(uint64(inj.seq.Span()) * uint64(eventClock(inj.dst)) / uint64(time.Second))
	last := inj.seqNo + uint16(inj.seq.Len()-1)
	inj.dst.rtp.Out().Map(inj.key, last, inj.ts+span, false, now)
}

// endInjection ends the injection in progress: audio to its leg resumes.
func (s *Session) endInjection() {
	if inj := s.dtmf.inject; inj != nil && inj.timer != nil {
		inj.timer.Stop()
	}
	s.dtmf.inject = nil
}

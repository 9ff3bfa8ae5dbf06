package session

import (
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

// source is a leg's inbound audio as PCM, for everyone who needs it decoded: transcoding
// destinations, mixers, PCM destinations and audio taps. An RTP leg's packets are decoded once
// here however many consume them; a PCM leg's frames are taken as they are. Each consumer rate
// other than the source's own has one resampler, shared by every consumer at that rate
// (DESIGN.md, "Decode once").
type source struct {
	rate  int                  // the rate of pcm: the decoder's output or the PCM leg's rate
	dec   *codec.StreamDecoder // RTP legs only
	pcm   []int16              // the current piece (one packet's or one frame's worth)
	views []*rateView          // the other rates consumers want
}

// rateView is a source's audio at one other rate.
type rateView struct {
	rate int
	rs   *codec.Resampler
	pcm  []int16
}

// newSource opens the decode (RTP legs) and resamplers for a source whose consumers want
// rates. A PCM leg's source runs at the leg's rate.
func newSource(l *leg, rates []int) (*source, error) {
	s := &source{}
	if l.pcm != nil {
		s.rate = l.pcm.Rate()
	} else {
		s.rate = decodeRate(l.codec, rates)
		dec, err := codec.NewStreamDecoder(l.codec, s.rate)
		if err != nil {
			return nil, err
		}
		s.dec = dec
	}
	s.pcm = make([]int16, 0, endpoint.FrameSamples(s.rate))
	for _, r := range rates {
		if r == s.rate || s.view(r) != nil {
			continue
		}
		rs, err := codec.NewStreamResampler(s.rate, r)
		if err != nil {
			s.close()
			return nil, err
		}
		s.views = append(s.views, &rateView{rate: r, rs: rs, pcm: make([]int16, 0, endpoint.FrameSamples(r))})
	}
	return s, nil
}

// decodeRate is the rate an RTP source is decoded at: its codec's own rate, except that Opus
// is decoded by libopus straight at the highest rate anyone wants (8 kHz for a G.711
// destination alone), which is far cheaper than 48 kHz and a resampler.
func decodeRate(c codec.Codec, rates []int) int {
	if c != codec.Opus {
		return c.SampleRate()
	}
	want := 8000
	for _, r := range rates {
		want = max(want, r)
	}
	for _, r := range [...]int{8000, 12000, 16000, 24000} {
		if want <= r {
			return r
		}
	}
	return 48000
}

// selectRate is the rate a PCM leg that can convert its frames itself (endpoint.RateSelector)
// is asked for: the highest rate its consumers want when that is below its own, so a
// converting leg shared by many sessions resamples once for all of them; its own rate when
// some consumer wants as much or more (a lower rate would lose what that consumer could hear).
func selectRate(native int, rates []int) int {
	want := 0
	for _, r := range rates {
		want = max(want, r)
	}
	if want == 0 || want >= native {
		return native
	}
	return want
}

// fits reports whether s serves exactly l's current codec and the consumer rates.
func (s *source) fits(l *leg, rates []int) bool {
	if l.pcm == nil && (s.dec == nil || s.dec.Codec() != l.codec || s.rate != decodeRate(l.codec, rates)) {
		return false
	}
	if l.pcm != nil && s.rate != l.pcm.Rate() {
		return false
	}
	if len(s.views) != countOther(rates, s.rate) {
		return false
	}
	for _, r := range rates {
		if r != s.rate && s.view(r) == nil {
			return false
		}
	}
	return true
}

// countOther counts the distinct rates other than own.
func countOther(rates []int, own int) int {
	n := 0
	for i, r := range rates {
		if r != own && !containsInt(rates[:i], r) {
			n++
		}
	}
	return n
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (s *source) view(rate int) *rateView {
	for _, v := range s.views {
		if v.rate == rate {
			return v
		}
	}
	return nil
}

// setPiece makes pcm (at s.rate; a PCM leg's frame, not copied) the current piece.
func (s *source) setPiece(pcm []int16) error {
	s.pcm = pcm
	return s.resample()
}

// decode decodes one RTP packet into the current piece.
func (s *source) decode(payload []byte, seq uint16, ts uint32) error {
	pcm, err := s.dec.Decode(s.pcm[:0], payload, seq, ts)
	s.pcm = pcm
	if e := s.resample(); err == nil {
		err = e
	}
	return err
}

// resample brings every view up to date with the current piece: views stay continuous even
// for consumers that skip this piece.
func (s *source) resample() (err error) {
	for _, v := range s.views {
		var e error
		if v.pcm, e = v.rs.Resample(v.pcm[:0], s.pcm); e != nil {
			err = e
		}
	}
	return err
}

// at returns the current piece at rate.
func (s *source) at(rate int) []int16 {
	if rate == s.rate {
		return s.pcm
	}
	if v := s.view(rate); v != nil {
		return v.pcm
	}
	return nil
}

// drain returns what the resampler at rate still holds back (the source is gone for good).
func (s *source) drain(rate int) []int16 {
	v := s.view(rate)
	if v == nil {
		return nil
	}
	pcm, err := v.rs.Drain(v.pcm[:0])
	if err != nil {
		return nil
	}
	v.pcm = pcm
	return pcm
}

func (s *source) close() {
	if s.dec != nil {
		s.dec.Close()
	}
	for _, v := range s.views {
		v.rs.Close()
	}
	s.views = nil
}

// pcmWriter re-frames the audio routed to a PCM leg from a single source into the 20 ms
// frames PCMMedia.WriteFrame takes (RTP sources may send other packet sizes).
type pcmWriter struct {
	frame   int
	pending []int16
}

func newPCMWriter(rate int) *pcmWriter {
	n := endpoint.FrameSamples(rate)
	return &pcmWriter{frame: n, pending: make([]int16, 0, 8*n)}
}

// write appends pcm and hands every complete frame to dst.
func (w *pcmWriter) write(dst endpoint.PCMMedia, pcm []int16, now time.Time) {
	w.pending = appendBounded(w.pending, pcm)
	for len(w.pending) >= w.frame {
		dst.WriteFrame(w.pending[:w.frame], now)
		w.pending = w.pending[:copy(w.pending, w.pending[w.frame:])]
	}
}

// appendBounded appends pcm to buf without growing it: when a source runs ahead of its
// consumer for longer than buf holds, its oldest audio goes rather than memory.
func appendBounded(buf, pcm []int16) []int16 {
	if free := cap(buf) - len(buf); len(pcm) > free {
		drop := min(len(pcm)-free, len(buf))
		buf = buf[:copy(buf, buf[drop:])]
		if len(pcm) > cap(buf) {
			pcm = pcm[len(pcm)-cap(buf):]
		}
	}
	return append(buf, pcm...)
}

// addAudioTap makes t receive l's inbound audio (decoded once, shared with routing).
func (m *mediaState) addAudioTap(l *leg, t AudioTap) {
	l.taps = append(l.taps, t)
	m.rebuild()
}

// removeAudioTap stops t; l's decode stops too when nothing else needs it.
func (m *mediaState) removeAudioTap(l *leg, t AudioTap) {
	for i, x := range l.taps {
		if x == t {
			l.taps = append(l.taps[:i], l.taps[i+1:]...)
			m.rebuild()
			return
		}
	}
}

// addPacketTap makes t see every leg's RTP after decryption, both directions.
func (m *mediaState) addPacketTap(t PacketTap) { m.packetTaps = append(m.packetTaps, t) }

// removePacketTap stops t.
func (m *mediaState) removePacketTap(t PacketTap) {
	for i, x := range m.packetTaps {
		if x == t {
			m.packetTaps = append(m.packetTaps[:i], m.packetTaps[i+1:]...)
			return
		}
	}
}

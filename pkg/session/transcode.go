package session

import (
	"encoding/binary"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// Routing modes of one (source → destination) edge (PROTOCOL.md §11).
type routeMode uint8

const (
	modePassthrough routeMode = iota // same codec: rewrite the header only
	modeTranscode                    // one source, another codec or a PCM source: an encoder
	modeMix                          // two or more sources: the destination's mixer
	modePCM                          // one source into a PCM leg: its audio at the leg's rate
)

// tsBridge maps a source's RTP timestamps into a generated stream's timeline, so packets that
// bypass the pipeline (telephone-event) land where the audio around them does.
type tsBridge struct {
	valid            bool
	in, out          uint32
	srcClock, dstClk uint32
}

func (b *tsBridge) mark(in, out uint32) { b.valid, b.in, b.out = true, in, out }

func (b *tsBridge) convert(in uint32, fallback uint32) uint32 {
	if !b.valid {
		return fallback
	}
	d := int64(int32(in - b.in))
	return b.out + uint32(d*int64(b.dstClk)/int64(b.srcClock))
}

// lossProtected is an Opus encoder whose FEC follows its destination's loss reports.
type lossProtected interface {
	SetLossProtection(codec.LossProtection) error
}

// lossState applies a destination's RTCP loss reports to the Opus encoder feeding it: the
// destination's sender statistics record the fraction lost of each report block on our stream
// (rtpstats.Sender.FractionLost), and codec.FECPolicy turns them into in-band FEC and an
// expected loss. Without reports the encoder keeps libopus's clean-path defaults.
type lossState struct {
	policy codec.FECPolicy
	seen   uint64 // report blocks already applied
}

// update applies the destination's reports that arrived since the last call, if any: on the
// packet path, a comparison when there are none. Only Opus destinations have anything to set.
func (s *lossState) update(dst *leg, enc lossProtected) error {
	if dst.codec != codec.Opus {
		return nil
	}
	fraction, n := dst.rtp.Sender().FractionLost()
	if n == s.seen {
		return nil
	}
	s.seen = n
	s.policy.Report(fraction)
	neg, _ := dst.rtp.Negotiated()
	return enc.SetLossProtection(s.policy.Protection(neg.OpusFEC))
}

// pipeline is the cached encoder of one (source, destination) pair: the source's shared
// decode at rate feeds it, and it numbers the stream it generates.
type pipeline struct {
	m        *mediaState
	src, dst *leg
	enc      *codec.StreamEncoder
	rate     int // the input rate, taken from the source's decode
	out      [][]byte
	key      uint64 // source identity in the destination's OutStream
	seq      uint16
	ts       uint32
	lastUse  uint64
	dtmf     tsBridge
	loss     lossState
}

func (p *pipeline) close() { p.enc.Close() }

// encoderRate is the rate a destination codec's encoder takes a source of srcRate at: the
// codec's own rate, except that Opus takes the source's rate when libopus accepts it, since
// it encodes narrower input far more cheaply (an 8 kHz G.711 source becomes narrowband Opus).
func encoderRate(c codec.Codec, srcRate int) int {
	if c != codec.Opus {
		return c.SampleRate()
	}
	if codec.OpusInputRate(srcRate) {
		return srcRate
	}
	return 48000
}

// flushSource sends what the encoders fed by l still hold to their destinations when l goes
// away (removed), so a destination hears the source to its end: the resampler's look-ahead of
// the source's audio at each encoder's rate, then the encoder's partial frame.
func (m *mediaState) flushSource(l *leg, now time.Time) {
	if l.src == nil {
		return
	}
	for _, r := range l.routes {
		if r.mode != modeTranscode || !r.dst.rtp.CanSend() {
			continue
		}
		p := r.pipe
		out := p.out[:0]
		var err error
		if tail := l.src.drain(p.rate); len(tail) > 0 {
			out, err = p.enc.Encode(out, tail)
		}
		if err == nil {
			out, err = p.enc.Flush(out)
		}
		p.out = out
		if err != nil {
			m.s.mgr.metrics.TranscodeErrors.Inc()
		}
		m.sendFrames(p.dst, p.key, &p.seq, &p.ts, out, now)
	}
}

// pipelineCache is the per-session LRU of transcoders (transcode_cache_size entries).
type pipelineCache struct {
	size  int
	clock uint64
	items map[[2]*leg]*pipeline
}

func newPipelineCache(size int) *pipelineCache {
	if size <= 0 {
		size = 64
	}
	return &pipelineCache{size: size, items: make(map[[2]*leg]*pipeline)}
}

// get returns the pipeline for (src, dst), creating it (and evicting the least recently used
// one when full). A creation failure is returned for the caller to count.
func (c *pipelineCache) get(m *mediaState, src, dst *leg) (*pipeline, error) {
	c.clock++
	rate := encoderRate(dst.codec, src.nominalRate())
	if p, ok := c.items[[2]*leg{src, dst}]; ok {
		if p.enc.Codec() == dst.codec && p.rate == rate {
			p.lastUse = c.clock
			return p, nil
		}
		c.drop(p) // the destination renegotiated another codec
	}
	enc, err := codec.NewStreamEncoder(dst.codec, rate, m.codecOpts)
	if err != nil {
		return nil, err
	}
	if len(c.items) >= c.size {
		var oldest *pipeline
		for _, p := range c.items {
			if oldest == nil || p.lastUse < oldest.lastUse {
				oldest = p
			}
		}
		c.drop(oldest)
	}
	m.nextIndex++
	p := &pipeline{m: m, src: src, dst: dst, enc: enc, rate: rate, lastUse: c.clock, key: uint64(m.nextIndex) << 32,
		dtmf: tsBridge{srcClock: uint32(src.codec.ClockRate()), dstClk: uint32(dst.codec.ClockRate())}}
	c.items[[2]*leg{src, dst}] = p
	return p, nil
}

func (c *pipelineCache) drop(p *pipeline) {
	p.close()
	delete(c.items, [2]*leg{p.src, p.dst})
}

// dropLeg releases every pipeline from or to l (endpoint removed; mediaState.flushSource has
// sent what those from l still held).
func (c *pipelineCache) dropLeg(l *leg) {
	for k, p := range c.items {
		if k[0] == l || k[1] == l {
			c.drop(p)
		}
	}
}

func (c *pipelineCache) close() {
	for _, p := range c.items {
		c.drop(p)
	}
}

// transcode encodes one piece of the source's decoded audio for a destination and sends what
// comes out. ts is the source's RTP timestamp of the piece, when it has one.
func (m *mediaState) transcode(p *pipeline, pcm []int16, ts uint32, hasTS bool, now time.Time) {
	if err := p.loss.update(p.dst, p.enc); err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	out, err := p.enc.Encode(p.out[:0], pcm)
	p.out = out
	if err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	m.sendFrames(p.dst, p.key, &p.seq, &p.ts, out, now)
	if len(out) > 0 && hasTS {
		p.dtmf.mark(ts, p.ts)
	}
}

// sendFrames sends generated 20 ms payloads to dst as the stream identified by key, numbering
// them on from *seq and *ts.
func (m *mediaState) sendFrames(dst *leg, key uint64, seq *uint16, ts *uint32, frames [][]byte, now time.Time) {
	neg, _ := dst.rtp.Negotiated()
	step := dst.codec.TimestampStep()
	for _, frame := range frames {
		*seq++
		*ts += step
		if m.audioPaused(dst, now) {
			continue
		}
		h := m.header(neg.PayloadType)
		h.SequenceNumber, h.Timestamp, h.Marker = dst.rtp.Out().Map(key, *seq, *ts, false, now)
		if m.sendRTP(dst, h, frame, now) {
			m.s.mgr.metrics.PacketsRouted.Inc()
		}
	}
}

// mixInput is one source of a mixer: its PCM not yet mixed (the source's shared decode at the
// mixer's rate feeds it).
type mixInput struct {
	pending     []int16
	contributed bool
	dtmf        tsBridge
}

// mixer serves a destination fed by two or more sources: every source's audio at the mix rate
// is summed with saturation and encoded once (PROTOCOL.md §11), or handed to a PCM leg as it
// is. A frame is emitted when a source that already contributed to it sends again.
type mixer struct {
	dst    *leg
	rate   int
	frame  int
	enc    *codec.StreamEncoder // nil for a PCM destination
	inputs map[*leg]*mixInput
	acc    []int32
	pcm    []int16
	out    [][]byte
	key    uint64
	seq    uint16
	ts     uint32
	active bool // the accumulator holds audio
	loss   lossState
}

// mixRate is the rate a destination's mix runs at: a PCM leg's rate or its codec's rate,
// except that Opus is fed at the widest source rate, since libopus encodes narrower input far
// more cheaply (§29).
func mixRate(dst *leg, sources []*leg) int {
	if dst.pcm != nil {
		return dst.pcm.Rate()
	}
	if dst.codec != codec.Opus {
		return dst.codec.SampleRate()
	}
	rate := 8000
	for _, s := range sources {
		rate = max(rate, s.nominalRate())
	}
	return encoderRate(codec.Opus, rate)
}

func (m *mediaState) newMixer(dst *leg, sources []*leg) (*mixer, error) {
	rate := mixRate(dst, sources)
	frame := rate * codec.FrameDuration / 1000
	m.nextIndex++
	mx := &mixer{dst: dst, rate: rate, frame: frame, inputs: make(map[*leg]*mixInput),
		acc: make([]int32, frame), pcm: make([]int16, frame), key: uint64(m.nextIndex) << 32}
	if dst.rtp != nil {
		enc, err := codec.NewStreamEncoder(dst.codec, rate, m.codecOpts)
		if err != nil {
			return nil, err
		}
		mx.enc = enc
	}
	for _, s := range sources {
		in := &mixInput{pending: make([]int16, 0, 8*frame)}
		if s.rtp != nil && dst.rtp != nil {
			in.dtmf = tsBridge{srcClock: uint32(s.codec.ClockRate()), dstClk: uint32(dst.codec.ClockRate())}
		}
		mx.inputs[s] = in
	}
	return mx, nil
}

func (mx *mixer) close() {
	if mx.enc != nil {
		mx.enc.Close()
	}
}

// mix adds a piece of one source's audio (at the mix rate) to the destination's mix. ts is the
// source's RTP timestamp of the piece, when it has one.
func (m *mediaState) mix(mx *mixer, src *leg, pcm []int16, ts uint32, hasTS bool, now time.Time) {
	input := mx.inputs[src]
	if input == nil {
		return
	}
	if hasTS {
		input.dtmf.mark(ts, mx.ts)
	}
	// A source that runs ahead of the others loses its oldest audio, never grows the buffer.
	input.pending = appendBounded(input.pending, pcm)
	for len(input.pending) >= mx.frame {
		if input.contributed {
			m.flushMix(mx, now)
		}
		for i, v := range input.pending[:mx.frame] {
			mx.acc[i] += int32(v)
		}
		input.contributed = true
		mx.active = true
		input.pending = input.pending[:copy(input.pending, input.pending[mx.frame:])]
	}
}

// flushMix encodes and sends the accumulated frame.
func (m *mediaState) flushMix(mx *mixer, now time.Time) {
	if !mx.active {
		return
	}
	for i, v := range mx.acc {
		mx.pcm[i] = int16(min(max(v, -32768), 32767))
		mx.acc[i] = 0
	}
	for _, in := range mx.inputs {
		in.contributed = false
	}
	mx.active = false
	if mx.enc == nil {
		mx.dst.pcm.WriteFrame(mx.pcm, now)
		return
	}
	if err := mx.loss.update(mx.dst, mx.enc); err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	out, err := mx.enc.Encode(mx.out[:0], mx.pcm)
	mx.out = out
	if err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	m.sendFrames(mx.dst, mx.key, &mx.seq, &mx.ts, out, now)
}

// scaleDTMFDuration rewrites an RFC 4733 payload's duration from one clock to another, into
// scratch (the inbound payload is left alone).
func scaleDTMFDuration(scratch, payload []byte, from, to uint32) []byte {
	if from == to || from == 0 || len(payload) < 4 || len(scratch) < len(payload) {
		return payload
	}
	out := scratch[:copy(scratch, payload)]
	d := uint64(binary.BigEndian.Uint16(out[2:4])) * uint64(to) / uint64(from)
	binary.BigEndian.PutUint16(out[2:4], uint16(min(d, 65535)))
	return out
}

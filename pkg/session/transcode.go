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
	modeTranscode                    // one source, another codec: a pipeline
	modeMix                          // two or more sources: the destination's mixer
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

// pipeline is a cached transcoder for one (source, destination) pair with the numbering of the
// stream it generates.
type pipeline struct {
	m        *mediaState
	src, dst *leg
	tr       *codec.Transcoder
	out      [][]byte
	key      uint64 // source identity in the destination's OutStream
	seq      uint16
	ts       uint32
	lastUse  uint64
	dtmf     tsBridge
	loss     lossState
}

func (p *pipeline) close() { p.tr.Close() }

// flush sends the last frame of a source that is gone (removed) to the destination, when this
// pipeline is what feeds it: what the transcoder still held (see codec.Transcoder.Flush).
func (p *pipeline) flush(now time.Time) {
	active := false
	for _, r := range p.m.routes[p.src] {
		active = active || r.pipe == p
	}
	if !active || !p.dst.rtp.CanSend() {
		return
	}
	out, err := p.tr.Flush(p.out[:0])
	p.out = out
	if err != nil {
		p.m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	p.m.sendFrames(p.dst, p.key, &p.seq, &p.ts, out, now)
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
	if p, ok := c.items[[2]*leg{src, dst}]; ok {
		p.lastUse = c.clock
		return p, nil
	}
	tr, err := codec.NewTranscoder(src.codec, dst.codec, m.codecOpts)
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
	p := &pipeline{m: m, src: src, dst: dst, tr: tr, lastUse: c.clock, key: uint64(m.nextIndex) << 32,
		dtmf: tsBridge{srcClock: uint32(src.codec.ClockRate()), dstClk: uint32(dst.codec.ClockRate())}}
	c.items[[2]*leg{src, dst}] = p
	return p, nil
}

func (c *pipelineCache) drop(p *pipeline) {
	p.close()
	delete(c.items, [2]*leg{p.src, p.dst})
}

// dropLeg releases every pipeline from or to l (endpoint removed). A pipeline from l that
// feeds a destination still there sends what it still held first (pipeline.flush), so the
// destination hears the source to its end.
func (c *pipelineCache) dropLeg(l *leg) {
	now := time.Now()
	for k, p := range c.items {
		if k[0] == l && k[1] != l {
			p.flush(now)
		}
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

// transcode runs one audio packet through a pipeline and sends what comes out.
func (m *mediaState) transcode(p *pipeline, in *inboundAudio, now time.Time) {
	if err := p.loss.update(p.dst, p.tr); err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	out, err := p.tr.Transcode(p.out[:0], in.payload, in.seq, in.ts)
	p.out = out
	if err != nil {
		// Frames appended before the error (concealment of an earlier gap) are still sent.
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	m.sendFrames(p.dst, p.key, &p.seq, &p.ts, out, now)
	if len(out) > 0 {
		p.dtmf.mark(in.ts, p.ts)
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
		h := m.header(neg.PayloadType)
		h.SequenceNumber, h.Timestamp, h.Marker = dst.rtp.Out().Map(key, *seq, *ts, false, now)
		if n, err := dst.rtp.SendRTP(h, frame, now); err == nil && n > 0 {
			m.s.mgr.metrics.PacketsRouted.Inc()
		}
	}
}

// inboundAudio is the part of an inbound packet the pipelines need.
type inboundAudio struct {
	payload []byte
	seq     uint16
	ts      uint32
}

// mixInput is one source of a mixer: its decoder and the PCM not yet mixed.
type mixInput struct {
	dec         *codec.StreamDecoder
	pcm         []int16
	pending     []int16
	contributed bool
	dtmf        tsBridge
}

// mixer serves a destination fed by two or more sources: every source is decoded to the mix
// rate, summed with saturation and encoded once (PROTOCOL.md §11). A frame is emitted when a
// source that already contributed to it sends again.
type mixer struct {
	dst    *leg
	rate   int
	frame  int
	enc    *codec.StreamEncoder
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

// mixRate is the rate a destination's mix runs at: its codec's rate, except that Opus is fed at
// the widest source rate, since libopus encodes narrower input far more cheaply (§29).
func mixRate(dst *leg, sources []*leg) int {
	if dst.codec != codec.Opus {
		return dst.codec.SampleRate()
	}
	rate := 8000
	for _, s := range sources {
		rate = max(rate, s.codec.SampleRate())
	}
	return rate
}

func (m *mediaState) newMixer(dst *leg, sources []*leg) (*mixer, error) {
	rate := mixRate(dst, sources)
	enc, err := codec.NewStreamEncoder(dst.codec, rate, m.codecOpts)
	if err != nil {
		return nil, err
	}
	frame := rate * codec.FrameDuration / 1000
	m.nextIndex++
	mx := &mixer{dst: dst, rate: rate, frame: frame, enc: enc, inputs: make(map[*leg]*mixInput),
		acc: make([]int32, frame), pcm: make([]int16, frame), key: uint64(m.nextIndex) << 32}
	for _, s := range sources {
		dec, err := codec.NewStreamDecoder(s.codec, rate)
		if err != nil {
			mx.close()
			return nil, err
		}
		mx.inputs[s] = &mixInput{dec: dec, pending: make([]int16, 0, 8*frame),
			dtmf: tsBridge{srcClock: uint32(s.codec.ClockRate()), dstClk: uint32(dst.codec.ClockRate())}}
	}
	return mx, nil
}

func (mx *mixer) close() {
	if mx.enc != nil {
		mx.enc.Close()
	}
	for _, in := range mx.inputs {
		in.dec.Close()
	}
}

// mix adds one source packet to the destination's mix.
func (m *mediaState) mix(mx *mixer, src *leg, in *inboundAudio, now time.Time) {
	input := mx.inputs[src]
	if input == nil {
		return
	}
	pcm, err := input.dec.Decode(input.pcm[:0], in.payload, in.seq, in.ts)
	input.pcm = pcm
	if err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	input.dtmf.mark(in.ts, mx.ts)
	if free := cap(input.pending) - len(input.pending); len(pcm) > free {
		// The source runs ahead of the others for longer than the buffer holds: drop its oldest
		// audio rather than grow without bound.
		drop := min(len(pcm)-free, len(input.pending))
		input.pending = input.pending[:copy(input.pending, input.pending[drop:])]
		if len(pcm) > cap(input.pending) {
			pcm = pcm[len(pcm)-cap(input.pending):]
		}
	}
	input.pending = append(input.pending, pcm...)
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

package session

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// MediaOptions is what endpoints need from the server configuration.
type MediaOptions struct {
	// Ports hands out plain RTP port pairs; shared by every session.
	Ports *rtpnet.PortAllocator
	// MediaIP is the address media sockets bind and SDP advertises.
	MediaIP netip.Addr
	// RTPPortRange is the inclusive range plain RTP port pairs come from.
	RTPPortRange [2]int
	// MaxEndpoints limits endpoints per session; 0 means unlimited.
	MaxEndpoints int
	// MaxSDPBytes rejects larger SDP bodies.
	MaxSDPBytes int
	// MediaTimeout raises endpoint.media_timeout after that long without media.
	MediaTimeout time.Duration
	// TranscodeCacheSize bounds the per-session transcoder LRU.
	TranscodeCacheSize int
	// OpusComplexity is the libopus encoder complexity (0-10).
	OpusComplexity int
	// Sources is rtp_source_networks: who may latch an RTP leg's media source (D24). The zero
	// value lets any source latch.
	Sources rtpnet.SourcePolicy
	// Poller serves the media sockets; each session puts all of its sockets on one worker.
	Poller *mediaio.Poller
}

// packetQueueSize is PROTOCOL.md §28's inbound packet queue of a session: where packets wait
// when the session is busy with a command as they arrive (see Packet).
const packetQueueSize = 256

// queuedPacket is a datagram copied off the media worker because its session was busy. They
// come from a process-wide pool, so a queued packet allocates nothing in steady state and an
// idle endpoint holds no buffer.
type queuedPacket struct {
	from endpoint.Leg
	rtcp bool
	src  netip.AddrPort
	at   time.Time
	n    int
	buf  [rtpnet.ReadBufferSize]byte
}

var queuedPackets = sync.Pool{New: func() any { return new(queuedPacket) }}

// mediaEvent is something an endpoint's goroutine reports to the session loop.
type mediaEvent struct {
	fn func(s *Session)
}

// leg is one endpoint of the session with the session's bookkeeping about it.
type leg struct {
	ep    endpoint.Leg
	rtp   endpoint.RTPMedia // ep's encoded-RTP media, or nil
	pcm   endpoint.PCMMedia // ep's PCM-frame media, or nil
	relay bool              // ep carries another session's audio (endpoint.Relay)
	index uint32            // per-session number, part of the source identity of its streams
	codec codec.Codec       // RTP legs: negotiated send codec; invalid while none

	src    *source    // inbound audio decoded for its consumers; nil when nobody needs it
	routes []*route   // where its audio goes (the routing table's row, rebuilt with it)
	rates  []int      // the rates src's consumers want (rebuilt with the routing table)
	taps   []AudioTap // consumers of the decoded inbound audio besides routing
	frame  []int16    // PCM legs: the frame ReadFrame fills
	writer *pcmWriter // PCM legs fed by one source: re-framing to 20 ms
	// warnedSharedKey: the echoed-SDES-key warning was logged for this leg.
	warnedSharedKey bool
}

// member reports whether the leg takes part in routing (PROTOCOL.md §10): RTP legs once a codec
// is agreed, PCM legs while playing or connected.
func (l *leg) member() bool {
	if l.rtp != nil {
		return l.codec.Valid()
	}
	st := l.ep.State()
	return st == endpoint.StatePlaying || st == endpoint.StateConnected
}

// nominalRate is the audio rate the leg's media has: its codec's, or its PCM rate.
func (l *leg) nominalRate() int {
	if l.pcm != nil {
		return l.pcm.Rate()
	}
	return l.codec.SampleRate()
}

// want records that a consumer of l's decoded audio needs it at rate.
func (l *leg) want(rate int) {
	if !containsInt(l.rates, rate) {
		l.rates = append(l.rates, rate)
	}
}

// route is one (source → destination) edge of the routing table.
type route struct {
	dst  *leg
	mode routeMode
	pipe *pipeline // modeTranscode
	mix  *mixer    // modeMix
}

// mediaState is the media half of a session: endpoints, routing and their timers. Whoever
// holds the session's lock owns it: the session loop, a media worker routing a packet, or the
// session's clock shard producing its frames.
type mediaState struct {
	s      *Session
	opts   *MediaOptions
	events chan mediaEvent
	queue  packetQueue // packets that waited for a busy session (PROTOCOL.md §28)
	// backlog counts packets queued and not yet handled. Only the session's media worker adds
	// to it; while it is not zero the worker queues every packet, so order is kept.
	backlog atomic.Int64
	worker  *mediaio.Worker
	scratch endpoint.Lease // filled while the session's lock is held
	// codecWork is set while some route decodes or encodes (a pipeline or a mixer): then every
	// packet goes through the session loop (see Packet).
	codecWork atomic.Bool

	legs      []*leg // creation order
	byID      map[uuid.UUID]*leg
	byEP      map[endpoint.Leg]*leg
	mixers    []*mixer
	pipes     *pipelineCache
	codecOpts codec.Options
	nextIndex uint32

	statsEvery time.Duration
	statsTimer *time.Timer

	// The media clock runs while a leg produces audio on its own. Its shard ticks it
	// (clockshard.go); clockKick asks the session loop to produce the due frames when the
	// shard does not.
	clock        mediaClock
	clockShard   *clockShard
	clockSlot    int  // index in the shard's members, -1 when not a member
	clockRunning bool // some leg produces audio on its own
	clockInline  bool // the shard may produce this session's frames itself (inlineClock)
	clockKick    chan struct{}
	packetTaps   []PacketTap

	in  endpoint.Inbound // scratch for the packet path
	hdr rtpnet.RTPHeader // the header being sent (a local would escape through RTPMedia)
}

func newMediaState(s *Session) *mediaState {
	return &mediaState{
		s:          s,
		opts:       &s.mgr.opts.Media,
		events:     make(chan mediaEvent, 16),
		queue:      newPacketQueue(),
		worker:     s.mgr.opts.Media.Poller.Pick(),
		clockShard: s.mgr.pickClockShard(),
		clockSlot:  -1,
		clockKick:  make(chan struct{}, 1),
		byID:       make(map[uuid.UUID]*leg),
		byEP:       make(map[endpoint.Leg]*leg),
		pipes:      newPipelineCache(s.mgr.opts.Media.TranscodeCacheSize),
		codecOpts:  codec.Options{OpusComplexity: s.mgr.opts.Media.OpusComplexity},
	}
}

func (s *Session) handleMediaEvent(ev mediaEvent) { ev.fn(s) }

// Post queues fn for the session loop (endpoint.Sink). It waits at most the command timeout for
// room, so a leg's goroutine never hangs on a session that stopped taking work.
func (m *mediaState) Post(fn func()) bool { return m.PostUnless(nil, fn) }

// PostUnless is Post that gives up once cancel is closed (endpoint.PostCanceler).
func (m *mediaState) PostUnless(cancel <-chan struct{}, fn func()) bool {
	ev := mediaEvent{fn: func(*Session) { fn() }}
	select {
	case m.events <- ev:
		return true
	case <-m.s.done:
		return false
	default:
	}
	t := time.NewTimer(m.s.mgr.opts.CommandTimeout)
	defer t.Stop()
	select {
	case m.events <- ev:
		return true
	case <-m.s.done:
	case <-cancel:
	case <-t.C:
		m.s.mgr.log.Warn("session did not take an endpoint's report in time", "session_id", m.s.id)
	}
	return false
}

// Emit sends a leg's event to the client (endpoint.Sink); session loop only.
func (m *mediaState) Emit(event string, data any) { m.s.emit(event, data) }

// SetState changes a leg's state with its event (endpoint.Sink); session loop only.
func (m *mediaState) SetState(ep endpoint.Leg, st endpoint.State) {
	if l, ok := m.byEP[ep]; ok {
		m.setState(l, st)
	}
}

// Packet is the media worker's way in (endpoint.Sink): it handles the datagram right there under
// the session's lock, with no goroutine hand-off. When the session is busy (a command, a timer)
// it never waits: the datagram is copied to the session's queue, and the session loop handles it
// next, in order. A full queue drops it.
//
// Sessions that transcode or mix always take the queue: a codec call (up to 100 µs of libopus)
// on the worker would hold up every other session of that worker, and long cgo calls on the
// worker's thread made the runtime hand its processor around on every packet (measured on one
// core at 100 PCMU↔Opus calls: 16,000–20,000 context switches per second, p50 latency 50–500 ms,
// against 4,400 and 1.4 ms with the codec work on the session loops).
func (m *mediaState) Packet(ep endpoint.Leg, b []byte, src netip.AddrPort, at time.Time, rtcpSocket bool) {
	s := m.s
	if m.backlog.Load() == 0 && !m.codecWork.Load() && s.tryLock() {
		if m.backlog.Load() == 0 {
			m.handleLocked(ep, b, src, at, rtcpSocket)
			s.unlock()
			return
		}
		s.unlock()
	}
	q := queuedPackets.Get().(*queuedPacket)
	q.from, q.rtcp, q.src, q.at, q.n = ep, rtcpSocket, src, at, copy(q.buf[:], b)
	m.backlog.Add(1)
	if !m.queue.push(q) {
		m.backlog.Add(-1)
		queuedPackets.Put(q)
	}
}

// handleLocked runs the packet path on the media worker. A panic there is a bug reached by this
// session's media: it ends this session only (the loop tears it down), never the worker.
func (m *mediaState) handleLocked(ep endpoint.Leg, b []byte, src netip.AddrPort, at time.Time, rtcpSocket bool) {
	defer func() {
		if r := recover(); r != nil {
			m.s.mgr.log.Error("panic in media path; ending the session", "session_id", m.s.id, "panic", r)
			m.s.fail()
		}
	}()
	m.handlePacket(ep, b, src, at, rtcpSocket)
}

// queueBatch is how many queued packets the session loop handles per lock acquisition.
const queueBatch = 16

// handleQueued handles up to queueBatch queued packets on the session loop (under the lock):
// one lock and one scratch loan for a burst instead of one per packet. When more wait, the
// loop is signalled to come back after its other work.
func (m *mediaState) handleQueued() {
	for range queueBatch {
		q, more := m.queue.pop()
		if q == nil {
			return
		}
		m.handlePacket(q.from, q.buf[:q.n], q.src, q.at, q.rtcp)
		m.backlog.Add(-1)
		queuedPackets.Put(q)
		if !more {
			return
		}
	}
	m.queue.signal() // more wait: come back after the loop's other work
}

// statsC is the stats subscription's timer channel (nil when unsubscribed).
func (m *mediaState) statsC() <-chan time.Time {
	if m.statsTimer == nil {
		return nil
	}
	return m.statsTimer.C
}

// add registers a new endpoint, starts its readers and rebuilds routing.
func (m *mediaState) add(ep endpoint.Leg, now time.Time) *leg {
	m.nextIndex++
	l := &leg{ep: ep, rtp: ep.RTP(), pcm: ep.PCM(), index: m.nextIndex}
	if r, ok := ep.(endpoint.Relay); ok {
		l.relay = r.Relay()
	}
	if l.pcm != nil {
		l.frame = make([]int16, endpoint.FrameSamples(l.pcm.Rate()))
	}
	if o, ok := ep.(endpoint.RTCPObservable); ok {
		o.ObserveRTCP(func(b []byte, now time.Time) { m.tapRTCP(ep, false, b, now) })
	}
	m.legs = append(m.legs, l)
	m.byID[ep.ID()] = l
	m.byEP[ep] = l
	m.s.mgr.metrics.EndpointsTotal.Inc()
	m.s.mgr.metrics.EndpointsActive.Inc()
	m.s.endpointsChanged(len(m.legs), now)
	m.rebuild()
	return l
}

// remove closes an endpoint and rebuilds routing; its recordings stop (endpoint_removed).
func (m *mediaState) remove(l *leg, now time.Time) {
	m.s.stopLegRecordings(l, reasonEndpointRemoved, now)
	l.ep.Close()
	m.detachLeg(l, now)
}

// detachLeg takes l out of the session without closing it (a transfer moves it on): routing
// is rebuilt, and what its encoders still held goes to its destinations first.
func (m *mediaState) detachLeg(l *leg, now time.Time) endpoint.Leg {
	delete(m.byID, l.ep.ID())
	delete(m.byEP, l.ep)
	for i, x := range m.legs {
		if x == l {
			m.legs = append(m.legs[:i], m.legs[i+1:]...)
			break
		}
	}
	m.flushSource(l, now)
	m.pipes.dropLeg(l)
	if l.src != nil {
		l.src.close()
		l.src = nil
	}
	m.s.mgr.metrics.EndpointsActive.Dec()
	m.s.endpointsChanged(len(m.legs), now)
	m.rebuild()
	return l.ep
}

// full reports whether max_endpoints_per_session is reached.
func (m *mediaState) full() bool {
	return m.opts.MaxEndpoints > 0 && len(m.legs) >= m.opts.MaxEndpoints
}

// rebuild recomputes the routing table (PROTOCOL.md §11): every member that sends is routed to
// every other member that receives, except relay to relay (bridges). A destination with one
// source gets passthrough (same codec, both RTP), a cached encoder (another codec) or the
// source's audio re-framed (a PCM destination); with two or more it gets a mixer. Every leg
// whose audio someone needs decoded gets one source: one decode, one resampler per rate.
func (m *mediaState) rebuild() {
	for _, mx := range m.mixers {
		mx.close()
	}
	m.mixers = m.mixers[:0]
	for _, l := range m.legs {
		clear(l.routes) // no stale route keeps a pipeline or mixer alive
		l.routes = l.routes[:0]
	}
	for _, l := range m.legs {
		l.codec = 0
		if l.rtp != nil {
			if c, ok := codec.Lookup(l.rtp.Codec()); ok {
				l.codec = c
			}
		}
		m.s.prepareInband(l) // in-band DTMF detection is a tap of its own (§31)
		l.rates = l.rates[:0]
		for _, t := range l.taps {
			l.want(t.TapRate())
		}
	}
	for _, dst := range m.legs {
		if !dst.member() || !dst.ep.Direction().Receives() {
			continue
		}
		var sources []*leg
		for _, src := range m.legs {
			if src != dst && src.member() && src.ep.Direction().Sends() && !(src.relay && dst.relay) {
				sources = append(sources, src)
			}
		}
		switch {
		case len(sources) == 0:
		case len(sources) >= 2:
			mx, err := m.newMixer(dst, sources)
			if err != nil {
				m.s.mgr.metrics.TranscodeErrors.Inc()
				m.s.mgr.log.Warn("mixer creation failed", "session_id", m.s.id, "endpoint_id", dst.ep.ID(), "err", err)
				continue
			}
			m.mixers = append(m.mixers, mx)
			for _, src := range sources {
				src.want(mx.rate)
				src.routes = append(src.routes, &route{dst: dst, mode: modeMix, mix: mx})
			}
		case dst.pcm != nil:
			src := sources[0]
			src.want(dst.pcm.Rate())
			if dst.writer == nil {
				dst.writer = newPCMWriter(dst.pcm.Rate())
			}
			src.routes = append(src.routes, &route{dst: dst, mode: modePCM})
		case sources[0].rtp != nil && sources[0].codec == dst.codec:
			sources[0].routes = append(sources[0].routes, &route{dst: dst, mode: modePassthrough})
		default:
			src := sources[0]
			p, err := m.pipes.get(m, src, dst)
			if err != nil {
				m.s.mgr.metrics.TranscodeErrors.Inc()
				m.s.mgr.log.Warn("transcoder creation failed", "session_id", m.s.id, "endpoint_id", dst.ep.ID(), "to", dst.codec, "err", err)
				continue
			}
			src.want(p.rate)
			src.routes = append(src.routes, &route{dst: dst, mode: modeTranscode, pipe: p})
		}
	}
	// Codec work on a media worker would hold up its other sessions: a session whose packets
	// need any goes through its loop. G.711 decoding for taps alone (in-band DTMF, fax, a
	// recording) is a table lookup and stays on the worker.
	heavy := len(m.mixers) > 0
	for _, l := range m.legs {
		for _, r := range l.routes {
			heavy = heavy || r.mode == modeTranscode
		}
	}
	for _, l := range m.legs {
		if len(l.rates) == 0 {
			if l.src != nil {
				l.src.close()
				l.src = nil
			}
			continue
		}
		if sel, ok := l.pcm.(endpoint.RateSelector); ok {
			sel.SelectRate(selectRate(sel.NativeRate(), l.rates))
		}
		if l.src == nil || !l.src.fits(l, l.rates) {
			if l.src != nil {
				l.src.close()
			}
			src, err := newSource(l, l.rates)
			if err != nil {
				l.src = nil
				m.s.mgr.metrics.TranscodeErrors.Inc()
				m.s.mgr.log.Warn("decoder creation failed", "session_id", m.s.id, "endpoint_id", l.ep.ID(), "err", err)
				continue
			}
			l.src = src
		}
		// Only RTP legs' packets arrive on a media worker; PCM legs are read on the session
		// loop anyway.
		heavy = heavy || (l.rtp != nil && (!cheapDecode(l.codec) || len(l.src.views) > 0))
	}
	m.codecWork.Store(heavy)
	m.updateClock()
}

// handlePacket is the per-packet path: receive, update state, route. It runs under the
// session's lock and allocates nothing.
func (m *mediaState) handlePacket(ep endpoint.Leg, b []byte, src netip.AddrPort, now time.Time, rtcpSocket bool) {
	l, ok := m.byEP[ep]
	if !ok {
		return // the endpoint was removed while the packet waited
	}
	in := &m.in
	l.rtp.Receive(b, src, now, rtcpSocket, in)
	switch {
	case in.Invalid:
		m.s.mgr.metrics.PacketsInvalid.Inc()
	case in.Rejected:
		m.s.mgr.metrics.PacketsRejected.Inc()
	case in.SRTPError:
		m.s.mgr.metrics.SRTPErrors.Inc()
	}
	if in.Kind != endpoint.InboundDrop {
		m.s.touch(now) // only the peer's own packets count as activity
	}
	switch in.Kind {
	case endpoint.InboundMedia:
		if st := ep.State(); st == endpoint.StateNew || st == endpoint.StateDisconnected {
			m.setState(l, endpoint.StateConnected)
		}
		for _, t := range m.packetTaps {
			t.Packet(ep, true, &in.Header, in.Payload, now)
		}
		if in.DTMF {
			m.onDTMFPacket(l, in, now)
		}
		if ep.Direction().Sends() {
			m.route(l, in, now)
		} else {
			m.tapOnly(l, in, now)
		}
	case endpoint.InboundRTCP:
		m.tapRTCP(ep, true, in.Payload, now)
		if in.Bye != nil {
			m.s.emit(protocol.EventRTCPBye, map[string]any{
				"endpoint_id": ep.ID().String(), "ssrc_list": in.Bye.SSRCs, "reason": in.Bye.Reason,
			})
		}
	}
}

// cheapDecode reports whether decoding c is cheap enough for a media worker (G.711).
func cheapDecode(c codec.Codec) bool { return c == codec.PCMU || c == codec.PCMA }

// tapOnly decodes an inbound packet of a leg that does not send (recvonly) for its taps alone:
// detectors and recordings hear it although nobody is sent it.
func (m *mediaState) tapOnly(src *leg, in *endpoint.Inbound, now time.Time) {
	if in.DTMF || src.src == nil || len(src.taps) == 0 {
		return
	}
	if err := src.src.decode(in.Payload, in.Header.SequenceNumber, in.Header.Timestamp); err != nil {
		m.s.mgr.metrics.TranscodeErrors.Inc()
	}
	m.feedTaps(src, now)
}

// route forwards one inbound packet to every destination of its source: passthrough as it is,
// everyone else from the source's one decode.
func (m *mediaState) route(src *leg, in *endpoint.Inbound, now time.Time) {
	if in.DTMF {
		m.routeDTMF(src, in, now)
		return
	}
	if src.src != nil {
		if err := src.src.decode(in.Payload, in.Header.SequenceNumber, in.Header.Timestamp); err != nil {
			// What decoded before the error (concealment of an earlier gap) is still routed.
			m.s.mgr.metrics.TranscodeErrors.Inc()
		}
	}
	key := uint64(src.index)<<32 | uint64(in.Header.SSRC)
	for _, r := range src.routes {
		if r.mode != modePassthrough {
			m.deliver(src, r, in.Header.Timestamp, true, now)
			continue
		}
		dst := r.dst.rtp
		if !dst.CanSend() || m.audioPaused(r.dst, now) {
			continue
		}
		dstNeg, _ := dst.Negotiated()
		h := m.header(dstNeg.PayloadType)
		h.SequenceNumber, h.Timestamp, h.Marker = dst.Out().Map(key, in.Header.SequenceNumber, in.Header.Timestamp, in.Header.Marker, now)
		if m.sendRTP(r.dst, h, in.Payload, now) {
			m.s.mgr.metrics.PacketsRouted.Inc()
		}
	}
	m.feedTaps(src, now)
}

// deliver hands the source's current decoded piece to one non-passthrough route. ts is the
// source's RTP timestamp of the piece (hasTS false for PCM sources), which places forwarded
// telephone-events on the generated stream.
func (m *mediaState) deliver(src *leg, r *route, ts uint32, hasTS bool, now time.Time) {
	if src.src == nil {
		return // its decoder could not be created (counted then)
	}
	switch r.mode {
	case modeMix:
		m.mix(r.mix, src, src.src.at(r.mix.rate), ts, hasTS, now) // even while the destination cannot send yet
	case modeTranscode:
		if r.dst.rtp.CanSend() {
			m.transcode(r.pipe, src.src.at(r.pipe.rate), ts, hasTS, now)
		}
	case modePCM:
		r.dst.writer.write(r.dst.pcm, src.src.at(r.dst.pcm.Rate()), now)
	}
}

// feedTaps hands the source's current decoded piece to its audio taps.
func (m *mediaState) feedTaps(src *leg, now time.Time) {
	if src.src == nil {
		return
	}
	for _, t := range src.taps {
		t.Audio(src.src.at(t.TapRate()), now)
	}
}

// sendRTP sends one packet on dst's own stream and shows it to the packet taps; it reports
// whether the packet went out.
func (m *mediaState) sendRTP(dst *leg, h *rtpnet.RTPHeader, payload []byte, now time.Time) bool {
	n, err := dst.rtp.SendRTP(h, payload, now)
	if err != nil || n == 0 {
		return false
	}
	for _, t := range m.packetTaps {
		t.Packet(dst.ep, false, h, payload, now)
	}
	return true
}

// tapRTCP shows an RTCP compound to the packet taps that want RTCP.
func (m *mediaState) tapRTCP(ep endpoint.Leg, inbound bool, b []byte, now time.Time) {
	for _, t := range m.packetTaps {
		if rt, ok := t.(RTCPTap); ok {
			rt.RTCP(ep, inbound, b, now)
		}
	}
}

// updateClock runs the media clock while some leg produces audio on its own and stops it
// otherwise: an RTP-only session is not ticked every 20 ms.
func (m *mediaState) updateClock() {
	need := false
	for _, l := range m.legs {
		need = need || (l.pcm != nil && l.ep.Direction().Sends())
	}
	m.clockInline = need && m.inlineClock()
	switch {
	case need && !m.clockRunning:
		m.clock.reset()
		m.clockRunning = true
		m.clockShard.add(m)
	case !need && m.clockRunning:
		m.stopClock()
	}
}

// stopClock leaves the clock shard.
func (m *mediaState) stopClock() {
	m.clockRunning = false
	m.clockShard.remove(m)
}

// clockKicked is the session loop's side of a kick from the shard.
func (m *mediaState) clockKicked() {
	if m.clockRunning {
		m.clockTick(time.Now())
	}
}

// clockTick produces the frames due on the media clock.
func (m *mediaState) clockTick(now time.Time) {
	for n := m.clock.due(now); n > 0; n-- {
		m.produceFrame(now)
	}
}

// produceFrame reads the next 20 ms from every PCM leg that sends and routes it.
func (m *mediaState) produceFrame(now time.Time) {
	for _, l := range m.legs {
		if l.pcm == nil || !l.ep.Direction().Sends() {
			continue
		}
		if n := endpoint.FrameSamples(l.pcm.Rate()); len(l.frame) != n {
			// A URL file learns its rate once downloaded (it buffers until then).
			l.frame = make([]int16, n)
		}
		if !l.pcm.ReadFrame(l.frame, now) || l.src == nil {
			continue
		}
		if err := l.src.setPiece(l.frame); err != nil {
			m.s.mgr.metrics.TranscodeErrors.Inc()
		}
		for _, r := range l.routes {
			m.deliver(l, r, 0, false, now)
		}
		m.feedTaps(l, now)
	}
}

// routeDTMF forwards a telephone-event packet to the same destinations as audio, remapping its
// payload type and placing its timestamp on the destination's timeline; it never enters a
// pipeline or mixer (§16).
func (m *mediaState) routeDTMF(src *leg, in *endpoint.Inbound, now time.Time) {
	srcNeg, _ := src.rtp.Negotiated()
	key := uint64(src.index)<<32 | uint64(in.Header.SSRC)
	for _, r := range src.routes {
		dst := r.dst.rtp
		if dst == nil {
			continue // PCM legs take no telephone-events
		}
		dstNeg, _ := dst.Negotiated()
		if !dst.CanSend() || dstNeg.TelephoneEventPT == 0 || m.audioPaused(r.dst, now) {
			continue // a digit being injected owns the destination's stream meanwhile
		}
		h := m.header(dstNeg.TelephoneEventPT)
		h.Marker = in.Header.Marker
		seq, ts := in.Header.SequenceNumber, in.Header.Timestamp
		switch r.mode {
		case modeTranscode:
			r.pipe.seq++
			key, seq, ts = r.pipe.key, r.pipe.seq, r.pipe.dtmf.convert(ts, r.pipe.ts)
		case modeMix:
			r.mix.seq++
			input := r.mix.inputs[src]
			key, seq = r.mix.key, r.mix.seq
			if input != nil {
				ts = input.dtmf.convert(ts, r.mix.ts)
			} else {
				ts = r.mix.ts
			}
		}
		// The marker of a telephone-event packet means "start of event" (RFC 4733 §2.5.1.3),
		// so it is the source's, never the re-basing marker.
		h.SequenceNumber, h.Timestamp, _ = dst.Out().Map(key, seq, ts, false, now)
		payload := scaleDTMFDuration(m.scratch.S.DTMF[:], in.Payload, srcNeg.TelephoneEventClock, dstNeg.TelephoneEventClock)
		m.sendRTP(r.dst, h, payload, now)
	}
}

// header resets the session's outgoing header for one packet of payload type pt.
func (m *mediaState) header(pt uint8) *rtpnet.RTPHeader {
	m.hdr = rtpnet.RTPHeader{PayloadType: pt}
	return &m.hdr
}

// setState changes an endpoint's state and tells the client. A PCM leg that starts playing
// or connects joins the routing table (§10).
func (m *mediaState) setState(l *leg, st endpoint.State) {
	wasMember := l.member()
	if old, changed := l.ep.SetState(st); changed {
		m.s.emit(protocol.EventEndpointStateChanged, map[string]string{
			"endpoint_id": l.ep.ID().String(), "old_state": string(old), "new_state": string(st),
		})
		if l.pcm != nil && !wasMember && l.member() {
			m.rebuild()
		}
	}
}

// codecName is the codec session.info and stats show for the leg: an RTP leg's send codec,
// or what a PCM leg describes itself as (endpoint.CodecDescriber), else none.
func (l *leg) codecName() string {
	if l.rtp != nil {
		return l.rtp.Codec()
	}
	if d, ok := l.ep.(endpoint.CodecDescriber); ok {
		return d.CodecName()
	}
	return ""
}

// tick runs the per-endpoint timers: media timeout and RTCP reports.
func (m *mediaState) tick(now time.Time) {
	for _, l := range m.legs {
		l.ep.Tick(now)
		w := l.mediaWatcher()
		if w == nil || w.TimedOut() || m.opts.MediaTimeout <= 0 {
			continue
		}
		since := w.LastMedia()
		if since.IsZero() {
			since = w.MediaExpectedSince()
		}
		if since.IsZero() {
			continue // no media expected yet
		}
		if gap := now.Sub(since); gap > m.opts.MediaTimeout {
			w.SetTimedOut(true)
			m.s.emit(protocol.EventMediaTimeout, map[string]any{
				"endpoint_id": l.ep.ID().String(), "duration_ms": gap.Milliseconds(),
			})
			// RTP and WebRTC legs go disconnected (D6); a bridge is connected for life (§10).
			if l.rtp != nil && l.ep.State() == endpoint.StateConnected {
				m.setState(l, endpoint.StateDisconnected)
			}
		}
	}
}

// mediaWatcher is the leg's media-timeout bookkeeping: an RTP leg's once its SDP exchange is
// done, a PCM leg's if it carries a peer's audio (endpoint.MediaWatcher), else none.
func (l *leg) mediaWatcher() endpoint.MediaWatcher {
	if l.rtp != nil {
		if _, ok := l.rtp.Negotiated(); !ok {
			return nil
		}
		return l.rtp
	}
	w, _ := l.ep.(endpoint.MediaWatcher)
	return w
}

// close ends every endpoint (session teardown).
func (m *mediaState) close() {
	if m.statsTimer != nil {
		m.statsTimer.Stop()
	}
	for _, mx := range m.mixers {
		mx.close()
	}
	m.mixers = nil
	m.pipes.close()
	if m.clockRunning {
		m.stopClock()
	}
	for _, l := range m.legs {
		if l.src != nil {
			l.src.close()
			l.src = nil
		}
		l.ep.Close()
		m.s.mgr.metrics.EndpointsActive.Dec()
	}
	m.legs = nil
}

// EndpointInfo is one entry of session.info's endpoints (PROTOCOL.md §4).
type EndpointInfo struct {
	EndpointID   string  `json:"endpoint_id"`
	EndpointType string  `json:"endpoint_type"`
	Direction    string  `json:"direction"`
	State        string  `json:"state"`
	Codec        *string `json:"codec"`
	// SharedPlaybackID appears only on shared file endpoints (§4).
	SharedPlaybackID string `json:"shared_playback_id,omitempty"`
}

// sharedPlayback is implemented by file legs; a shared one names the playback it joined.
type sharedPlayback interface {
	SharedPlaybackID() string
}

// endpointInfos lists the endpoints for session.info and GET /sessions/{id}.
func (m *mediaState) endpointInfos() []any {
	out := make([]any, 0, len(m.legs))
	for _, l := range m.legs {
		info := EndpointInfo{
			EndpointID:   l.ep.ID().String(),
			EndpointType: l.ep.Type(),
			Direction:    string(l.ep.Direction()),
			State:        string(l.ep.State()),
		}
		if c := l.codecName(); c != "" {
			info.Codec = &c
		}
		if sp, ok := l.ep.(sharedPlayback); ok {
			info.SharedPlaybackID = sp.SharedPlaybackID()
		}
		out = append(out, info)
	}
	return out
}

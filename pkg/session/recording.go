package session

import (
	"encoding/binary"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// RecordingOptions configure recordings (PROTOCOL.md §7, §17, §33).
type RecordingOptions struct {
	// Dir is recording_dir; nil refuses every recording.start.
	Dir *recording.Dir
	// MaxPerSession is max_recordings_per_session.
	MaxPerSession int
	// QueueSize is recording_channel_size.
	QueueSize int
	// FlushTimeout is recording_flush_timeout_secs (D16: the writer is aborted after it).
	FlushTimeout time.Duration
	// WrapFile, when set, replaces each newly created recording file with the one it returns.
	// Tests use it to put a disk that never finishes a write (a pipe nobody reads) or a full
	// one (/dev/full) under a recording.
	WrapFile func(created *os.File) *os.File
}

// recording.stopped reasons (§8).
const (
	reasonEndpointRemoved     = "endpoint_removed"
	reasonEndpointTransferred = "endpoint_transferred"
	reasonSessionDestroyed    = "session_destroyed"
	reasonWriteError          = "write_error"
)

// activeRecording is one recording of the session.
type activeRecording struct {
	id       uuid.UUID
	leg      *leg // nil: the whole session
	path     string
	decoded  bool // wav/ogg: fed by audio taps, not the packet tap
	rec      *recording.Recorder
	taps     map[*leg]*recordingTap // decoded recordings: one audio tap per recorded leg
	channels int
	next     int // decoded recordings: the channel of the next leg to send audio
}

// covers reports whether the recording takes l's media.
func (r *activeRecording) covers(l *leg) bool { return r.leg == nil || r.leg == l }

// recordings is a session's recording state, owned by the session loop (under its lock).
type recordings struct {
	active []*activeRecording
	// pcapTap is registered as the session's packet tap while a PCAP recording is active.
	pcapTap *pcapTap
	// indices is the §17 address plan: endpoint indices in order of first recorded packet.
	indices recording.Indices[endpoint.Leg]
	// pcm turns PCM legs' audio into the packets PCAP recordings take from them.
	pcm map[*leg]*pcmCapture
}

// pcmCapture makes the packets §17 records for a leg that produces PCM rather than RTP: PCMU
// (PT 0) on a stream of its own for file and tone legs (D18), L16/48000 little-endian (PT 127,
// sequence, timestamp and SSRC 0) for bridge legs. It is an AudioTap on the leg.
type pcmCapture struct {
	s       *Session
	l       *leg
	rate    int
	enc     *codec.Encoder // PCMU; nil for L16
	pending []int16
	hdr     rtpnet.RTPHeader
	payload []byte
}

// bridgeL16Rate is the rate of bridge frames in recordings (PT 127).
const bridgeL16Rate = 48000

func newPCMCapture(s *Session, l *leg) (*pcmCapture, error) {
	c := &pcmCapture{s: s, l: l, rate: 8000}
	if l.relay {
		c.rate = bridgeL16Rate
		c.hdr.PayloadType = 127
	} else {
		enc, err := codec.NewEncoder(codec.PCMU, 8000, codec.DefaultOptions())
		if err != nil {
			return nil, err
		}
		c.enc = enc
		id := l.ep.ID()
		c.hdr.SSRC = binary.BigEndian.Uint32(id[0:4])
		c.hdr.SequenceNumber = binary.BigEndian.Uint16(id[4:6])
	}
	frame := c.rate * codec.FrameDuration / 1000
	c.pending = make([]int16, 0, 2*frame)
	c.payload = make([]byte, 0, 2*frame)
	return c, nil
}

func (c *pcmCapture) TapRate() int { return c.rate }

// Audio packs the leg's audio into 20 ms packets and records them.
func (c *pcmCapture) Audio(pcm []int16, now time.Time) {
	frame := c.rate * codec.FrameDuration / 1000
	for len(pcm) > 0 {
		n := min(frame-len(c.pending), len(pcm))
		c.pending = append(c.pending, pcm[:n]...)
		pcm = pcm[n:]
		if len(c.pending) < frame {
			return
		}
		if c.enc != nil {
			var err error
			if c.payload, err = c.enc.Encode(c.payload[:0], c.pending); err != nil {
				c.pending = c.pending[:0]
				continue
			}
		} else {
			c.payload = c.payload[:0]
			for _, v := range c.pending {
				// §12: the bridges' internal L16 is 16-bit little-endian, as the original
				// records it (not RFC 3551's network order).
				c.payload = binary.LittleEndian.AppendUint16(c.payload, uint16(v))
			}
		}
		c.pending = c.pending[:0]
		c.s.capture(c.l.ep, &c.hdr, c.payload, now)
		if c.enc != nil {
			c.hdr.SequenceNumber++
			c.hdr.Timestamp += uint32(frame)
		}
	}
}

func (c *pcmCapture) close() {
	if c.enc != nil {
		c.enc.Close()
	}
}

// syncPCMCaptures gives every PCM leg that sends a pcmCapture while a PCAP recording is
// active, and takes them away from legs that left or when the last PCAP recording stops.
func (s *Session) syncPCMCaptures() {
	recs := &s.recs
	want := s.hasPCAPRecording()
	for l, c := range recs.pcm {
		if !want || s.media.byEP[l.ep] != l {
			if s.media.byEP[l.ep] == l {
				s.media.removeAudioTap(l, c)
			}
			c.close()
			delete(recs.pcm, l)
		}
	}
	if !want {
		return
	}
	for _, l := range s.media.legs {
		if l.pcm == nil || !l.ep.Direction().Sends() || recs.pcm[l] != nil {
			continue
		}
		c, err := newPCMCapture(s, l)
		if err != nil {
			s.mgr.log.Warn("recording a PCM endpoint failed", "session_id", s.id, "endpoint_id", l.ep.ID(), "err", err)
			continue
		}
		if recs.pcm == nil {
			recs.pcm = make(map[*leg]*pcmCapture)
		}
		recs.pcm[l] = c
		s.media.addAudioTap(l, c)
	}
}

// pcapTap feeds the session's PCAP recordings (PacketTap): every RTP packet a leg received,
// after decryption, with its plain 12-byte header, from the leg's address to rtpbridge's.
type pcapTap struct{ s *Session }

// Packet runs under the session's lock on a media worker or the session loop.
func (t *pcapTap) Packet(from endpoint.Leg, inbound bool, h *rtpnet.RTPHeader, payload []byte, now time.Time) {
	if !inbound {
		return // §17: media rtpbridge sends is not captured
	}
	t.s.capture(from, h, payload, now)
}

// RTCP captures the RTCP of plain RTP legs (§17): compounds received, from the endpoint's
// address to rtpbridge's, and the reports rtpbridge sends, the other way. WebRTC RTCP is not
// captured.
func (t *pcapTap) RTCP(from endpoint.Leg, inbound bool, b []byte, now time.Time) {
	if from.Type() != "rtp" {
		return
	}
	t.s.captureEach(from, now, func(r *recording.Recorder, addr recording.Addr) {
		if inbound {
			r.CaptureRaw(now, addr, recording.BridgeAddr, b)
		} else {
			r.CaptureRaw(now, recording.BridgeAddr, addr, b)
		}
	})
}

// capture hands one packet an endpoint sent to every PCAP recording that covers it, from the
// endpoint's address (assigned now if this is its first recorded packet) to rtpbridge's.
func (s *Session) capture(from endpoint.Leg, h *rtpnet.RTPHeader, payload []byte, now time.Time) {
	s.captureEach(from, now, func(r *recording.Recorder, addr recording.Addr) {
		r.CaptureRTP(now, addr, recording.BridgeAddr, h, payload)
	})
}

// captureEach runs write for every PCAP recording that covers from, with the endpoint's
// address (assigned now if this is its first recorded packet), and counts the packet once.
func (s *Session) captureEach(from endpoint.Leg, now time.Time, write func(r *recording.Recorder, addr recording.Addr)) {
	recs := &s.recs
	var addr recording.Addr
	haveAddr, recorded := false, false
	for _, r := range recs.active {
		if r.decoded || (r.leg != nil && r.leg.ep != from) {
			continue
		}
		if r.rec.Failed() {
			continue // removed at the next tick with write_error
		}
		if !haveAddr {
			n, ok := recs.indices.Index(from)
			if !ok {
				return // the address plan is exhausted
			}
			addr, haveAddr = recording.EndpointAddr(n), true
		}
		write(r.rec, addr)
		recorded = true
	}
	if recorded {
		s.mgr.metrics.PacketsRecorded.Inc()
	}
}

// recordingTap feeds one leg's decoded audio to a decoded recording (AudioTap).
type recordingTap struct {
	r     *activeRecording
	rate  int
	track *recording.Track
}

func (t *recordingTap) TapRate() int { return t.rate }

func (t *recordingTap) Audio(pcm []int16, now time.Time) { t.track.Audio(pcm, now) }

// recordingInfos lists the active recordings for session.info (RecordingInfo, §4).
func (s *Session) recordingInfos() []any {
	out := make([]any, 0, len(s.recs.active))
	for _, r := range s.recs.active {
		var ep *string
		if r.leg != nil {
			id := r.leg.ep.ID().String()
			ep = &id
		}
		out = append(out, map[string]any{
			"recording_id": r.id.String(), "endpoint_id": ep, "file_path": r.path, "state": "active",
		})
	}
	return out
}

// addRecording makes r active and connects it to the media.
func (s *Session) addRecording(r *activeRecording) {
	recs := &s.recs
	recs.active = append(recs.active, r)
	s.mgr.metrics.RecordingsActive.Inc()
	if r.decoded {
		s.tapLegs(r)
		return
	}
	if recs.pcapTap == nil {
		recs.pcapTap = &pcapTap{s: s}
		s.media.addPacketTap(recs.pcapTap)
	}
	s.syncPCMCaptures()
}

// tapLegs gives a decoded recording an audio tap on every leg it covers that has none yet.
func (s *Session) tapLegs(r *activeRecording) {
	for _, l := range s.media.legs {
		if !r.covers(l) || r.taps[l] != nil {
			continue
		}
		t := &recordingTap{r: r, rate: r.rec.Rate(), track: r.rec.NewTrack()}
		r.taps[l] = t
		s.media.addAudioTap(l, t)
	}
}

// dropRecording disconnects r from the media and stops it (the file finishes in the background);
// with a reason, the client is told with recording.stopped.
func (s *Session) dropRecording(r *activeRecording, reason string, now time.Time) map[string]any {
	recs := &s.recs
	for i, x := range recs.active {
		if x == r {
			recs.active = append(recs.active[:i], recs.active[i+1:]...)
			break
		}
	}
	s.mgr.metrics.RecordingsActive.Dec()
	for l, t := range r.taps {
		if _, alive := s.media.byEP[l.ep]; alive {
			s.media.removeAudioTap(l, t)
		}
	}
	r.taps = nil
	s.syncPCMCaptures()
	if recs.pcapTap != nil && !s.hasPCAPRecording() {
		s.media.removePacketTap(recs.pcapTap)
		recs.pcapTap = nil
		recs.indices = recording.Indices[endpoint.Leg]{} // a later recording numbers afresh
	}
	r.rec.Stop()
	res := map[string]any{
		"file_path":       r.path,
		"duration_ms":     now.Sub(r.rec.Started()).Milliseconds(),
		"packets":         r.rec.Packets(),
		"dropped_packets": r.rec.Dropped(),
	}
	if reason != "" {
		ev := map[string]any{"recording_id": r.id.String(), "reason": reason}
		for k, v := range res {
			ev[k] = v
		}
		s.emit(protocol.EventRecordingStopped, ev)
	}
	return res
}

func (s *Session) hasPCAPRecording() bool {
	for _, r := range s.recs.active {
		if !r.decoded {
			return true
		}
	}
	return false
}

// stopLegRecordings ends the recordings of one endpoint that is leaving the session (removed,
// or transferred to another session) and frees its PCAP address. Whoever removes or transfers
// an endpoint calls it before the leg goes; recordingsTick catches any removal that did not.
func (s *Session) stopLegRecordings(l *leg, reason string, now time.Time) {
	for _, r := range append([]*activeRecording(nil), s.recs.active...) {
		if r.leg == l {
			s.dropRecording(r, reason, now)
		} else if t := r.taps[l]; t != nil {
			s.media.removeAudioTap(l, t)
			delete(r.taps, l)
		}
	}
	if c := s.recs.pcm[l]; c != nil {
		s.media.removeAudioTap(l, c)
		c.close()
		delete(s.recs.pcm, l)
	}
	s.recs.indices.Release(l.ep)
}

// stopAllRecordings ends every recording (session teardown).
func (s *Session) stopAllRecordings(reason string, now time.Time) {
	for len(s.recs.active) > 0 {
		s.dropRecording(s.recs.active[0], reason, now)
	}
}

// recordingsTick runs with the session's timers: recordings whose writer failed stop with
// write_error, leg recordings whose endpoint left stop with endpoint_removed, and session-wide
// decoded recordings tap endpoints that joined since.
func (s *Session) recordingsTick(now time.Time) {
	if len(s.recs.active) == 0 {
		return
	}
	s.recs.indices.ReleaseUnless(func(ep endpoint.Leg) bool { return s.media.byEP[ep] != nil })
	s.syncPCMCaptures()
	for _, r := range append([]*activeRecording(nil), s.recs.active...) {
		switch {
		case r.rec.Failed():
			s.dropRecording(r, reasonWriteError, now)
		case r.leg != nil && s.media.byEP[r.leg.ep] != r.leg:
			s.dropRecording(r, reasonEndpointRemoved, now)
		case r.decoded:
			for l := range r.taps {
				if s.media.byEP[l.ep] != l {
					delete(r.taps, l)
				}
			}
			s.tapLegs(r)
		}
	}
}

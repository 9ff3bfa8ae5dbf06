package recording

import (
	"fmt"
	"os"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// DecodedFormat describes a decoded recording (PROTOCOL.md §33).
type DecodedFormat struct {
	// Container is "wav" (16-bit PCM) or "ogg" (Opus, 32 kbit/s per channel).
	Container string
	// Rate is the file's sample rate: 8000, 16000 or 48000.
	Rate int
	// Channels is 1 for a mixed recording, or how many parties get a channel of their own
	// (at most 8; later parties are mixed into the last channel).
	Channels int
}

// Timeline of decoded recordings: every party's audio is placed by wall-clock time on one
// timeline that starts when the recording does; what nobody sent is silence. The writer keeps
// the most recent moment in a ring and writes a moment out once it is timelineLag old, so audio
// that arrives a little late (jitter, a busy session) still lands in its place.
const (
	timelineLag  = 300 * time.Millisecond
	timelineRing = time.Second
	// decodedTick is how often the writer moves the timeline on (and so writes silence while
	// nobody speaks); fileFlushEvery how often the file itself is flushed (WAV sizes updated).
	decodedTick    = 100 * time.Millisecond
	fileFlushEvery = time.Second
	// trackTolerance: a piece that arrives within this of where its track left off continues
	// the track seamlessly; further off, it is placed where the clock says.
	trackTolerance = 60 * time.Millisecond
)

// NewDecoded starts a decoded recording into f, which the recorder owns from now on.
func NewDecoded(f *os.File, format DecodedFormat, opts Options) (*Recorder, error) {
	fw, err := codec.NewFileWriter(f, format.Container, format.Rate, format.Channels)
	if err != nil {
		f.Close()
		return nil, err
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = decodedTick
	}
	s := newTimeline(fw, time.Now())
	r := start(f, s, opts)
	r.rate, r.channels, r.started = format.Rate, format.Channels, s.t0
	return r, nil
}

// Rate is a decoded recording's sample rate (0 for PCAP).
func (r *Recorder) Rate() int { return r.rate }

// Track is one party's audio in a decoded recording. It takes the party's channel when its
// first audio arrives (channels in order of first audio). Its methods run on the session loop.
type Track struct {
	r       *Recorder
	channel int // -1 until the first audio
	place   placer
}

// NewTrack adds a party to a decoded recording.
func (r *Recorder) NewTrack() *Track {
	return &Track{r: r, channel: -1, place: placer{rate: r.rate, t0: r.started}}
}

// Audio places pcm, which ends about now, on the recording's timeline.
func (t *Track) Audio(pcm []int16, now time.Time) {
	r := t.r
	if len(pcm) == 0 || r.rate == 0 {
		return
	}
	if t.channel < 0 {
		t.channel = min(r.nextChannel, r.channels-1)
		r.nextChannel++
	}
	if pos, pcm, ok := t.place.place(pcm, now); ok {
		r.CaptureAudio(t.channel, pos, pcm)
	}
}

// placer puts one party's pieces of audio on the timeline that starts at t0: where the
// wall clock says each piece began, except that a piece arriving within trackTolerance of
// where the previous one ended continues it seamlessly (network jitter is not a gap).
type placer struct {
	rate    int
	t0      time.Time
	started bool
	next    int64 // where the party left off
}

// place returns pcm's position (pcm trimmed to what lies after t0); false if it lies before.
func (p *placer) place(pcm []int16, end time.Time) (int64, []int16, bool) {
	pos := samplesIn(end.Sub(p.t0), p.rate) - int64(len(pcm))
	if p.started {
		tol := int64(p.rate) * int64(trackTolerance) / int64(time.Second)
		if d := pos - p.next; d >= -tol && d <= tol {
			pos = p.next
		}
	}
	p.started, p.next = true, pos+int64(len(pcm))
	if p.next <= 0 {
		return 0, nil, false // entirely before the recording started
	}
	if pos < 0 {
		pcm, pos = pcm[-pos:], 0
	}
	return pos, pcm, true
}

// timeline is the writer side of a decoded recording (a sink): it mixes each channel's pieces
// into a ring at their timeline positions and hands the file finished moments.
type timeline struct {
	fw        *codec.FileWriter
	rate      int
	channels  int
	t0        time.Time
	ring      []int32 // ringLen × channels, interleaved; summed, clipped when written
	ringLen   int64
	committed int64 // first timeline sample not yet written to the file
	highest   int64 // end of the latest audio placed
	out       []int16
	lastFlush time.Time
	// offline: converting a PCAP, not following the clock (pcap2wav); moments are written
	// as the ring fills and at the end.
	offline bool
}

func newTimeline(fw *codec.FileWriter, t0 time.Time) *timeline {
	ringLen := int64(fw.Rate()) * int64(timelineRing) / int64(time.Second)
	return &timeline{
		fw: fw, rate: fw.Rate(), channels: fw.Channels(), t0: t0,
		ring: make([]int32, ringLen*int64(fw.Channels())), ringLen: ringLen,
		out: make([]int16, 0, fw.Rate()/50*fw.Channels()), lastFlush: t0,
	}
}

func (tl *timeline) write(e *entry) error {
	start, pcm := e.pos, e.pcm
	if end := start + int64(len(pcm)); end <= tl.committed {
		return nil // too late: that moment is already in the file
	}
	if start < tl.committed {
		pcm, start = pcm[tl.committed-start:], tl.committed
	}
	end := start + int64(len(pcm))
	if end-tl.committed > tl.ringLen {
		// Ahead of the ring (a burst, or the writer fell behind the clock): write out the
		// oldest moments to make room.
		if err := tl.commit(end - tl.ringLen); err != nil {
			return err
		}
	}
	ch := int64(e.channel)
	for i, v := range pcm {
		tl.ring[((start+int64(i))%tl.ringLen)*int64(tl.channels)+ch] += int32(v)
	}
	tl.highest = max(tl.highest, end)
	return nil
}

// frontier is the timeline position that is timelineLag old now.
func (tl *timeline) frontier(now time.Time) int64 {
	return samplesIn(now.Sub(tl.t0)-timelineLag, tl.rate)
}

// samplesIn is how many samples at rate Hz d lasts, without overflowing for any duration.
func samplesIn(d time.Duration, rate int) int64 {
	return int64(d/time.Second)*int64(rate) + int64(d%time.Second)*int64(rate)/int64(time.Second)
}

func (tl *timeline) flush() error {
	if tl.offline {
		return nil
	}
	now := time.Now()
	if err := tl.commit(tl.frontier(now)); err != nil {
		return err
	}
	if now.Sub(tl.lastFlush) < fileFlushEvery {
		return nil
	}
	tl.lastFlush = now
	return tl.fw.Flush()
}

func (tl *timeline) close() error {
	// Everything placed goes in, and the silence up to the moment of the stop.
	end := tl.highest
	if !tl.offline {
		end = max(end, tl.frontier(time.Now().Add(timelineLag)))
	}
	err := tl.commit(end)
	if cerr := tl.fw.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit writes the timeline up to upTo (exclusive) to the file, in pieces of at most 20 ms.
func (tl *timeline) commit(upTo int64) error {
	step := int64(cap(tl.out) / tl.channels)
	for tl.committed < upTo {
		n := min(upTo-tl.committed, step)
		out := tl.out[:0]
		for i := int64(0); i < n; i++ {
			slot := ((tl.committed + i) % tl.ringLen) * int64(tl.channels)
			for c := int64(0); c < int64(tl.channels); c++ {
				v := tl.ring[slot+c]
				tl.ring[slot+c] = 0
				out = append(out, int16(min(max(v, -32768), 32767)))
			}
		}
		if err := tl.fw.Write(out); err != nil {
			return fmt.Errorf("decoded recording: %w", err)
		}
		tl.committed += n
	}
	return nil
}

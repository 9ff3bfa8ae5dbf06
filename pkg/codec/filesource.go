package codec

/*
#cgo pkg-config: libavcodec libavformat libavutil
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

// go-astiav v0.39.0 wraps neither avcodec_flush_buffers nor best_effort_timestamp.
static void rtpbridge_flush_decoder(AVCodecContext *c) { avcodec_flush_buffers(c); }
static int64_t rtpbridge_frame_ts(const AVFrame *f) { return f->best_effort_timestamp; }
// The packets' time base lets the decoder move a frame's timestamp past the samples it trims
// (encoder delay, Opus pre-skip), so timestamps stay the file's positions.
static void rtpbridge_set_pkt_timebase(AVCodecContext *c, int num, int den) {
	c->pkt_timebase = (AVRational){num, den};
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/asticode/go-astiav"
)

// FileSource decodes the best audio stream of a file with libavformat and libavcodec, to
// 16-bit mono PCM at the file's own sample rate (Rate). Channels are averaged to mono and any
// sample format becomes s16 by libswresample, which here never changes the rate: resampling to
// a destination's rate happens once, later, in the session (PROTOCOL.md D18).
//
// Every format the linked FFmpeg demuxes and decodes is accepted (see ffmpeg/configure.flags).
// A FileSource is not safe for concurrent use; its calls read the disk and decode, so they
// belong on a worker goroutine, never on a session loop.
type FileSource struct {
	path     string
	fc       *astiav.FormatContext
	stream   *astiav.Stream
	index    int
	tb       astiav.Rational
	start    int64 // stream start_time in tb, 0 when unknown
	ctx      *astiav.CodecContext
	codecID  astiav.CodecID
	pkt      *astiav.Packet
	frame    *astiav.Frame
	swr      *astiav.SoftwareResampleContext
	out      *astiav.Frame // s16 mono at rate; pending is a view of it
	outCap   int
	rate     int
	duration time.Duration

	pending []int16
	// pos is the file position, in samples at rate, of the first sample of pending (or of the
	// next sample decoded when pending is empty).
	pos int64
	// target drops decoded samples before it (a seek lands on the packet before its position).
	target int64
	// drained: the demuxer reached the end and the decoder was told so.
	drained bool
	eof     bool
	// checkLanding is set while Seek decodes its first frame; overshot reports that frame
	// started after the target.
	checkLanding, overshot bool
	// badPackets counts consecutive packets the decoder refused; beyond maxBadPackets the
	// file is declared undecodable instead of skipping on forever.
	badPackets int
}

// seekPreroll is how far before its target Seek starts decoding.
const seekPreroll = 100 * time.Millisecond

// rawFormats maps the extensions of headerless audio files to their FFmpeg demuxers.
var rawFormats = map[string]string{
	".ul": "mulaw", ".ulaw": "mulaw", ".mulaw": "mulaw", ".pcmu": "mulaw", ".mu": "mulaw",
	".al": "alaw", ".alaw": "alaw", ".pcma": "alaw",
	".g722": "g722", ".722": "g722",
}

// maxBadPackets is how many consecutive undecodable packets a file may have before Read fails.
const maxBadPackets = 50

// OpenFile opens path (a local file; no protocol prefix is interpreted) and prepares its best
// audio stream for decoding. Errors name the file's problem in FFmpeg's words.
func OpenFile(path string) (*FileSource, error) {
	s := &FileSource{path: path}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *FileSource) open() error {
	if s.fc = astiav.AllocFormatContext(); s.fc == nil {
		return errors.New("codec: allocating format context failed")
	}
	// Headerless formats have no signature to probe, and the probes of other raw formats
	// (AMR) take them for theirs: the extension decides.
	// Raw G.711 is telephony's 8 kHz mono, not the raw-PCM demuxers' default of 44.1 kHz.
	var format *astiav.InputFormat
	var opts *astiav.Dictionary
	if name, ok := rawFormats[strings.ToLower(filepath.Ext(s.path))]; ok {
		if format = astiav.FindInputFormat(name); format == nil {
			return fmt.Errorf("raw %s files are not supported by this build", name)
		}
		if name != "g722" {
			opts = astiav.NewDictionary()
			defer opts.Free()
			if err := errors.Join(opts.Set("sample_rate", "8000", 0), opts.Set("ch_layout", "mono", 0)); err != nil {
				return fmt.Errorf("codec: raw %s options: %w", name, err)
			}
		}
	}
	// "file:" keeps FFmpeg from reading a protocol (pipe:, …) out of the path.
	if err := s.fc.OpenInput("file:"+s.path, format, opts); err != nil {
		// avformat_open_input frees the context on failure.
		s.fc = nil
		return fmt.Errorf("not a readable audio file: %w", err)
	}
	if err := s.fc.FindStreamInfo(nil); err != nil {
		return fmt.Errorf("reading stream information: %w", err)
	}
	st, dec, err := s.fc.FindBestStream(astiav.MediaTypeAudio, -1, -1)
	if err != nil {
		if errors.Is(err, astiav.ErrDecoderNotFound) {
			for _, x := range s.fc.Streams() {
				if x.CodecParameters().MediaType() == astiav.MediaTypeAudio {
					return fmt.Errorf("audio codec %s is not supported by this build", x.CodecParameters().CodecID().Name())
				}
			}
		}
		return fmt.Errorf("no audio stream: %w", err)
	}
	s.stream, s.index, s.tb = st, st.Index(), st.TimeBase()
	for _, x := range s.fc.Streams() {
		if x.Index() != s.index {
			x.SetDiscard(astiav.DiscardAll)
		}
	}
	if st.StartTime() != astiav.NoPtsValue {
		s.start = st.StartTime()
	}
	par := st.CodecParameters()
	s.codecID = par.CodecID()
	if s.ctx = astiav.AllocCodecContext(dec); s.ctx == nil {
		return errors.New("codec: allocating codec context failed")
	}
	if err := s.ctx.FromCodecParameters(par); err != nil {
		return fmt.Errorf("copying %s parameters: %w", s.codecID.Name(), err)
	}
	C.rtpbridge_set_pkt_timebase((*C.AVCodecContext)(s.ctx.UnsafePointer()), C.int(s.tb.Num()), C.int(s.tb.Den()))
	if err := s.ctx.Open(dec, nil); err != nil {
		return fmt.Errorf("opening %s decoder: %w", s.codecID.Name(), err)
	}
	if s.rate = s.ctx.SampleRate(); s.rate <= 0 || s.rate > 384000 {
		return fmt.Errorf("%s stream has no usable sample rate (%d Hz)", s.codecID.Name(), s.rate)
	}
	switch d := s.fc.Duration(); {
	case d > 0 && d != astiav.NoPtsValue:
		s.duration = time.Duration(d) * time.Microsecond // AV_TIME_BASE is 1,000,000
	case st.Duration() > 0 && st.Duration() != astiav.NoPtsValue:
		s.duration = time.Duration(float64(st.Duration()) * s.tb.Float64() * float64(time.Second))
	}
	if s.pkt = astiav.AllocPacket(); s.pkt == nil {
		return errors.New("codec: allocating packet failed")
	}
	if s.frame = astiav.AllocFrame(); s.frame == nil {
		return errors.New("codec: allocating frame failed")
	}
	s.outCap = 8192
	var err2 error
	if s.out, err2 = newPCMFrame(s.rate, s.outCap); err2 != nil {
		return err2
	}
	return s.newSwr()
}

func (s *FileSource) newSwr() error {
	if s.swr != nil {
		s.swr.Free()
	}
	if s.swr = astiav.AllocSoftwareResampleContext(); s.swr == nil {
		return errors.New("codec: allocating libswresample context failed")
	}
	return nil
}

// Rate is the sample rate, in Hz, of the PCM Read returns: the file's own.
func (s *FileSource) Rate() int { return s.rate }

// Duration is the file's duration as its container states it; 0 when unknown.
func (s *FileSource) Duration() time.Duration { return s.duration }

// CodecName is the FFmpeg name of the audio stream's codec (e.g. "mp3", "pcm_s16le").
func (s *FileSource) CodecName() string { return s.codecID.Name() }

// Read fills dst with the next samples and returns how many it wrote; at the end of the file
// it returns 0, io.EOF. It returns fewer than len(dst) only at the end or with an error.
func (s *FileSource) Read(dst []int16) (int, error) {
	if s.fc == nil {
		return 0, errClosed
	}
	n := 0
	for n < len(dst) {
		if len(s.pending) == 0 {
			if s.eof {
				break
			}
			if err := s.decode(); err != nil {
				if errors.Is(err, io.EOF) {
					s.eof = true
					break
				}
				return n, err
			}
			continue
		}
		c := copy(dst[n:], s.pending)
		s.pending = s.pending[c:]
		s.pos += int64(c)
		n += c
	}
	if n == 0 && s.eof {
		return 0, io.EOF
	}
	return n, nil
}

// decode makes pending non-empty, or returns io.EOF or an error.
func (s *FileSource) decode() error {
	for {
		err := s.ctx.ReceiveFrame(s.frame)
		switch {
		case err == nil:
			err = s.convert()
			s.frame.Unref()
			if err != nil {
				return err
			}
			if len(s.pending) > 0 {
				return nil
			}
			continue
		case errors.Is(err, astiav.ErrEof):
			return io.EOF
		case !errors.Is(err, astiav.ErrEagain):
			// A damaged packet (a file cut mid-packet) is skipped, as players do; a file of
			// nothing but damage is not.
			if s.badPackets++; s.badPackets > maxBadPackets {
				return fmt.Errorf("decoding %s: %w", s.codecID.Name(), err)
			}
			continue
		}
		if s.drained {
			return io.EOF
		}
		if err := s.feed(); err != nil {
			return err
		}
	}
}

// feed hands the decoder the next packet of the stream, or tells it the stream ended.
func (s *FileSource) feed() error {
	for {
		err := s.fc.ReadFrame(s.pkt)
		if errors.Is(err, astiav.ErrEof) {
			s.drained = true
			if err := s.ctx.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
				return fmt.Errorf("draining %s decoder: %w", s.codecID.Name(), err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", s.path, err)
		}
		if s.pkt.StreamIndex() != s.index {
			s.pkt.Unref()
			continue
		}
		err = s.ctx.SendPacket(s.pkt)
		s.pkt.Unref()
		if err == nil || errors.Is(err, astiav.ErrEagain) {
			s.badPackets = 0
			return nil
		}
		if s.badPackets++; s.badPackets > maxBadPackets {
			return fmt.Errorf("decoding %s: %w", s.codecID.Name(), err)
		}
	}
}

// convert turns the decoded frame into s16 mono at rate in out and sets pending, dropping
// what lies before a seek target.
func (s *FileSource) convert() error {
	in := s.frame.NbSamples()
	if in <= 0 {
		return nil
	}
	if ts := int64(C.rtpbridge_frame_ts(cFrame(s.frame))); ts != astiav.NoPtsValue {
		// The frame's place in the file, so a seek lands on the sample it asked for.
		s.pos = int64(float64(ts-s.start)*s.tb.Float64()*float64(s.rate) + 0.5)
	}
	fr := s.frame.SampleRate()
	if fr <= 0 || fr > 384000 || in > 1<<20 || int64(in)*int64(s.rate)/int64(fr) > 1<<22 {
		return fmt.Errorf("decoding %s: frame of %d samples at %d Hz", s.codecID.Name(), in, fr)
	}
	need := in + int(int64(in)*int64(s.rate)/int64(fr)) + 64
	var err error
	if s.outCap, err = growPCMFrame(s.out, s.rate, s.outCap, need); err != nil {
		return err
	}
	s.out.SetNbSamples(s.outCap)
	err = s.swr.ConvertFrame(s.frame, s.out)
	if errors.Is(err, astiav.ErrInputChanged) || errors.Is(err, astiav.ErrOutputChanged) {
		// The stream changed layout or format mid-file: start a converter for the new one.
		if err = s.newSwr(); err == nil {
			s.out.SetNbSamples(s.outCap)
			err = s.swr.ConvertFrame(s.frame, s.out)
		}
	}
	if err != nil {
		return fmt.Errorf("converting %s audio to mono s16: %w", s.codecID.Name(), err)
	}
	s.pending = frameSamples(s.out)
	if s.checkLanding {
		s.checkLanding = false
		// A frame starting more than 1 ms after the target: the demuxer seeked too far.
		s.overshot = s.pos > s.target+int64(s.rate/1000)
	}
	if drop := s.target - s.pos; drop > 0 {
		drop = min(drop, int64(len(s.pending)))
		s.pending = s.pending[drop:]
		s.pos += drop
	}
	return nil
}

// Seek moves to pos from the start of the file, so the next Read starts there: libavformat
// seeks to a packet before pos and the samples up to pos are decoded and dropped (precise to
// the file's timestamps). A demuxer that lands after pos is asked again further back, and one
// that cannot seek is reopened and decoded from the start. Seeking past the end makes the next
// Read return io.EOF.
func (s *FileSource) Seek(pos time.Duration) error {
	if s.fc == nil {
		return errClosed
	}
	pos = max(pos, 0)
	target := int64(pos.Seconds()*float64(s.rate) + 0.5)
	if s.drained && pos > 0 {
		// Demuxers keep end-of-stream state that a seek does not fully reset (Ogg then
		// stamps every later packet wrongly): seek in a fresh one, as a loop does.
		if err := s.reopen(); err != nil {
			return err
		}
	}
	back := time.Duration(0)
	for attempt := 0; ; attempt++ {
		at := pos - back
		if at <= 0 || attempt == 3 {
			// The start of a file is exactly where opening it puts the decoder (encoder delay
			// skipped as on the first play), and a loop restarts there.
			if err := s.reopen(); err != nil {
				return err
			}
			s.target = target
			return s.prime()
		}
		// Start decoding a little early: decoders that build on earlier packets (MP3's bit
		// reservoir, Opus, AAC's overlap) produce their warm-up before the target.
		ts := s.start + int64(max(at-seekPreroll, 0).Seconds()/s.tb.Float64())
		if err := s.fc.SeekFrame(s.index, ts, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
			back = pos // cannot seek: reopen
			continue
		}
		C.rtpbridge_flush_decoder((*C.AVCodecContext)(s.ctx.UnsafePointer()))
		if err := s.newSwr(); err != nil {
			return err
		}
		s.pending, s.drained, s.eof, s.badPackets = nil, false, false, 0
		s.pos, s.target, s.overshot = 0, target, false
		if err := s.prime(); err != nil {
			return err
		}
		if !s.overshot {
			return nil
		}
		back = 2*back + 500*time.Millisecond
	}
}

// prime decodes up to the seek target, so Seek knows where it landed.
func (s *FileSource) prime() error {
	s.checkLanding = true
	defer func() { s.checkLanding = false }()
	err := s.decode()
	if errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	return err
}

// reopen closes and reopens the file at its start.
func (s *FileSource) reopen() error {
	old := *s
	s.fc, s.ctx, s.pkt, s.frame, s.swr, s.out = nil, nil, nil, nil, nil, nil
	s.pending, s.drained, s.eof, s.badPackets = nil, false, false, 0
	s.pos, s.target, s.overshot = 0, 0, false
	err := s.open()
	old.Close()
	return err
}

// Close frees everything; Read and Seek then fail. It may be called more than once.
func (s *FileSource) Close() {
	if s.fc != nil {
		s.fc.CloseInput()
		s.fc.Free()
		s.fc = nil
	}
	freeCodecContext(&s.ctx)
	freePacket(&s.pkt)
	freeFrame(&s.frame)
	freeFrame(&s.out)
	if s.swr != nil {
		s.swr.Free()
		s.swr = nil
	}
	s.pending = nil
}

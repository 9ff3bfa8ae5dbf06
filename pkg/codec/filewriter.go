package codec

/*
#include <libavutil/frame.h>
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// FileWriter encodes interleaved 16-bit PCM into an audio file through FFmpeg's muxers: WAV
// (pcm_s16le) or Ogg Opus (libopus, 32 kbit/s per channel). It is what decoded recordings
// (PROTOCOL.md §33) write with. It writes to an *os.File it does not own, through an AVIO
// context whose callbacks are the file's Write and Seek, so the file may have been opened with
// whatever care its caller takes (recording_dir's exclusive, symlink-safe create).
//
// A WAV file's RIFF and data sizes are rewritten on every Flush, so a file cut short by a
// crash still plays up to its last flush. A FileWriter is used by one goroutine.
type FileWriter struct {
	file      *os.File
	container string
	rate      int
	channels  int
	frameSize int // samples per channel per encoder frame

	fc      *astiav.FormatContext
	pb      *astiav.IOContext
	stream  *astiav.Stream
	ctx     *astiav.CodecContext
	frame   *astiav.Frame
	pkt     *astiav.Packet
	pending []int16 // interleaved samples not yet a whole frame
	pts     int64

	pos, size int64 // the file's write offset and extent, as FFmpeg moved them
	dataStart int64 // WAV: offset of the first sample; 0 for Ogg
	err       error // a failed write: the writer refuses further work
	closed    bool
}

// fileWriterBuffer is the AVIO buffer: FFmpeg hands the file this much at a time.
const fileWriterBuffer = 32 << 10

// oggPageMicros is the longest an Ogg page holds (µs).
const oggPageMicros = 250000

// opusFileBitrate is an Ogg Opus file's bit rate per channel (§33).
const opusFileBitrate = 32000

// NewFileWriter starts a container ("wav" or "ogg") file with channels channels (1-8) at rate
// Hz in f and writes its header.
func NewFileWriter(f *os.File, container string, rate, channels int) (*FileWriter, error) {
	if channels < 1 || channels > 8 {
		return nil, fmt.Errorf("codec: %d channels, want 1-8", channels)
	}
	w := &FileWriter{file: f, container: container, rate: rate, channels: channels}
	if err := w.open(); err != nil {
		w.free()
		return nil, fmt.Errorf("codec: starting %s file at %d Hz, %d channels: %w", container, rate, channels, err)
	}
	return w, nil
}

// channelLayout is FFmpeg's default layout for n channels, which is also the Vorbis/Opus
// mapping family 1 order libopus's multichannel encoder accepts.
func channelLayout(n int) astiav.ChannelLayout {
	return [...]astiav.ChannelLayout{
		astiav.ChannelLayoutMono, astiav.ChannelLayoutStereo, astiav.ChannelLayoutSurround,
		astiav.ChannelLayoutQuad, astiav.ChannelLayout5Point0Back, astiav.ChannelLayout5Point1Back,
		astiav.ChannelLayout6Point1, astiav.ChannelLayout7Point1,
	}[n-1]
}

func (w *FileWriter) open() error {
	var encName string
	switch w.container {
	case "wav":
		encName = "pcm_s16le"
	case "ogg":
		encName = "libopus"
		if !OpusInputRate(w.rate) {
			return fmt.Errorf("libopus cannot take %d Hz", w.rate)
		}
	default:
		return fmt.Errorf("unknown container %q", w.container)
	}
	enc := astiav.FindEncoderByName(encName)
	if enc == nil {
		return fmt.Errorf("encoder %s not built into this FFmpeg", encName)
	}
	var err error
	if w.fc, err = astiav.AllocOutputFormatContext(nil, w.container, ""); err != nil {
		return fmt.Errorf("muxer %s: %w", w.container, err)
	}
	if w.ctx = astiav.AllocCodecContext(enc); w.ctx == nil {
		return errors.New("allocating codec context failed")
	}
	w.ctx.SetSampleFormat(astiav.SampleFormatS16)
	w.ctx.SetSampleRate(w.rate)
	w.ctx.SetChannelLayout(channelLayout(w.channels))
	w.ctx.SetTimeBase(astiav.NewRational(1, w.rate))
	if w.fc.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader) {
		w.ctx.SetFlags(w.ctx.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if w.container == "ogg" {
		w.ctx.SetBitRate(int64(opusFileBitrate * w.channels))
		for _, kv := range [][2]string{{"application", "audio"}, {"frame_duration", strconv.Itoa(FrameDuration)}} {
			if err := opts.Set(kv[0], kv[1], 0); err != nil {
				return fmt.Errorf("setting %s: %w", kv[0], err)
			}
		}
	}
	if err := w.ctx.Open(enc, opts); err != nil {
		return fmt.Errorf("opening %s: %w", encName, err)
	}
	w.frameSize = w.ctx.FrameSize()
	if w.frameSize == 0 {
		w.frameSize = w.rate * FrameDuration / 1000 // PCM takes any size: 20 ms
	}
	if w.stream = w.fc.NewStream(nil); w.stream == nil {
		return errors.New("adding stream failed")
	}
	if err := w.stream.CodecParameters().FromCodecContext(w.ctx); err != nil {
		return fmt.Errorf("stream parameters: %w", err)
	}
	w.stream.SetTimeBase(astiav.NewRational(1, w.rate))
	if w.pb, err = astiav.AllocIOContext(fileWriterBuffer, true, nil, w.seek, w.write); err != nil {
		return fmt.Errorf("io context: %w", err)
	}
	w.fc.SetPb(w.pb)
	muxOpts := astiav.NewDictionary()
	defer muxOpts.Free()
	if w.container == "ogg" {
		// Pages of 250 ms rather than the muxer's 1 s: a process killed mid-call loses at most
		// about that much besides what was not flushed yet.
		if err := muxOpts.Set("page_duration", strconv.Itoa(oggPageMicros), 0); err != nil {
			return fmt.Errorf("setting page_duration: %w", err)
		}
	}
	if err := w.fc.WriteHeader(muxOpts); err != nil {
		return fmt.Errorf("writing header: %w", err)
	}
	w.pb.Flush()
	if w.err != nil {
		return w.err
	}
	if w.container == "wav" {
		w.dataStart = w.pos
	}
	if w.frame = astiav.AllocFrame(); w.frame == nil {
		return errors.New("allocating frame failed")
	}
	w.frame.SetSampleFormat(astiav.SampleFormatS16)
	w.frame.SetSampleRate(w.rate)
	w.frame.SetChannelLayout(channelLayout(w.channels))
	w.frame.SetNbSamples(w.frameSize)
	if err := w.frame.AllocBuffer(0); err != nil {
		return fmt.Errorf("frame buffer: %w", err)
	}
	if w.pkt = astiav.AllocPacket(); w.pkt == nil {
		return errors.New("allocating packet failed")
	}
	w.pending = make([]int16, 0, w.frameSize*w.channels)
	return nil
}

// write and seek are the AVIO callbacks: FFmpeg's output goes to the file at the offsets it
// chooses (the WAV muxer seeks back to finish its header).
func (w *FileWriter) write(b []byte) (int, error) {
	n, err := w.file.Write(b)
	w.pos += int64(n)
	w.size = max(w.size, w.pos)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("writing %s: %w", w.file.Name(), err)
	}
	return n, err
}

func (w *FileWriter) seek(offset int64, whence int) (int64, error) {
	const avseekSize = 0x10000 // AVSEEK_SIZE: report the size, do not move
	if whence&avseekSize != 0 {
		return w.size, nil
	}
	n, err := w.file.Seek(offset, whence&^0x20000) // drop AVSEEK_FORCE
	if err == nil {
		w.pos = n
	}
	return n, err
}

// Channels is the file's channel count.
func (w *FileWriter) Channels() int { return w.channels }

// Rate is the file's sample rate.
func (w *FileWriter) Rate() int { return w.rate }

// Write appends interleaved samples (a multiple of Channels) to the file.
func (w *FileWriter) Write(interleaved []int16) error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	if len(interleaved)%w.channels != 0 {
		return fmt.Errorf("codec: %d samples are not whole %d-channel frames", len(interleaved), w.channels)
	}
	whole := w.frameSize * w.channels
	for len(interleaved) > 0 {
		n := min(whole-len(w.pending), len(interleaved))
		w.pending = append(w.pending, interleaved[:n]...)
		interleaved = interleaved[n:]
		if len(w.pending) == whole {
			if err := w.encode(w.pending); err != nil {
				return err
			}
			w.pending = w.pending[:0]
		}
	}
	return nil
}

// encode sends one frame (or the last, shorter one) to the encoder and muxes what comes out.
func (w *FileWriter) encode(samples []int16) error {
	if !w.frame.IsWritable() {
		if err := w.frame.MakeWritable(); err != nil {
			return fmt.Errorf("codec: making frame writable: %w", err)
		}
	}
	cf := (*C.AVFrame)(w.frame.UnsafePointer())
	copy(unsafe.Slice((*int16)(unsafe.Pointer(cf.data[0])), w.frameSize*w.channels), samples)
	w.frame.SetNbSamples(len(samples) / w.channels)
	w.frame.SetPts(w.pts)
	w.pts += int64(len(samples) / w.channels)
	if err := w.ctx.SendFrame(w.frame); err != nil {
		return fmt.Errorf("codec: encoding: %w", err)
	}
	return w.drain()
}

// drain muxes every packet the encoder has ready.
func (w *FileWriter) drain() error {
	for {
		if err := w.ctx.ReceivePacket(w.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("codec: encoding: %w", err)
		}
		w.pkt.SetStreamIndex(w.stream.Index())
		w.pkt.RescaleTs(w.ctx.TimeBase(), w.stream.TimeBase())
		err := w.fc.WriteFrame(w.pkt) // one stream: no interleaving needed; takes the reference
		w.pkt.Unref()
		if w.err != nil {
			return w.err
		}
		if err != nil {
			return fmt.Errorf("codec: muxing: %w", err)
		}
	}
}

// Flush hands what FFmpeg buffered to the file and, for WAV, rewrites the header's sizes so the
// file is complete as it stands.
func (w *FileWriter) Flush() error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	w.pb.Flush()
	if w.err != nil {
		return w.err
	}
	return w.patchWAVSizes()
}

// patchWAVSizes writes the RIFF and data chunk sizes for the data written so far, without
// moving FFmpeg's write offset (pwrite).
func (w *FileWriter) patchWAVSizes() error {
	if w.container != "wav" || w.dataStart < 12 {
		return nil
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(min(w.size-8, 0xffffffff)))
	if _, err := w.file.WriteAt(b[:], 4); err != nil {
		return fmt.Errorf("codec: updating WAV header: %w", err)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(min(w.size-w.dataStart, 0xffffffff)))
	if _, err := w.file.WriteAt(b[:], w.dataStart-4); err != nil {
		return fmt.Errorf("codec: updating WAV header: %w", err)
	}
	return nil
}

// Close encodes what is pending (padded by the encoder as it needs), flushes the encoder,
// writes the trailer and frees FFmpeg's objects. It does not close the file.
func (w *FileWriter) Close() error {
	if w.closed {
		return nil
	}
	err := w.finish()
	w.closed = true
	w.free()
	return err
}

func (w *FileWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	if len(w.pending) > 0 {
		if err := w.encode(w.pending); err != nil {
			return err
		}
		w.pending = w.pending[:0]
	}
	if err := w.ctx.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("codec: flushing encoder: %w", err)
	}
	if err := w.drain(); err != nil {
		return err
	}
	if err := w.fc.WriteTrailer(); err != nil {
		return fmt.Errorf("codec: writing trailer: %w", err)
	}
	w.pb.Flush()
	if w.err != nil {
		return w.err
	}
	return w.patchWAVSizes()
}

func (w *FileWriter) free() {
	freeFrame(&w.frame)
	freePacket(&w.pkt)
	freeCodecContext(&w.ctx)
	if w.fc != nil {
		w.fc.Free() // avformat_free_context leaves a custom pb alone
		w.fc = nil
	}
	if w.pb != nil {
		w.pb.Free()
		w.pb = nil
	}
}

var _ io.Closer = (*FileWriter)(nil)

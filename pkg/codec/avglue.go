package codec

/*
#cgo pkg-config: libavcodec libavutil
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>

// Switches the patched libopus decoder wrapper's decode_fec option (see decoder.go).
static int rtpbridge_set_decode_fec(AVCodecContext *c, int on) {
	return av_opt_set_int(c->priv_data, "decode_fec", on, 0);
}

// Sets the libopus encoder wrapper's packet_loss and fec options on an open context; with
// ffmpeg/patches/libopusenc-runtime-fec.patch the next frame passes them on to libopus.
static int rtpbridge_set_opus_loss(AVCodecContext *c, int fec, int loss) {
	int ret = av_opt_set_int(c->priv_data, "packet_loss", loss, 0);
	if (ret < 0)
		return ret;
	return av_opt_set_int(c->priv_data, "fec", fec, 0);
}

// Reports whether packet_loss and fec are runtime options (the patch is applied).
static int rtpbridge_opus_loss_runtime(AVCodecContext *c) {
	return av_opt_find(c->priv_data, "packet_loss", NULL, AV_OPT_FLAG_RUNTIME_PARAM, 0) != NULL &&
	       av_opt_find(c->priv_data, "fec", NULL, AV_OPT_FLAG_RUNTIME_PARAM, 0) != NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// This file holds the only unsafe code of the package: copying samples and payload bytes
// between Go slices and FFmpeg's buffers without the per-call Go allocations that go-astiav's
// Frame.Data and Packet.Data helpers make. It reads C struct fields and copies; it computes
// nothing.

// cPacket returns the AVPacket behind p. go-astiav v0.39.0 exposes no UnsafePointer for
// packets; its Packet is a struct whose only field is the *C.AVPacket, which this reads.
// newPayloadPacket and checkPacketLayout verify that assumption before any packet is used.
func cPacket(p *astiav.Packet) *C.AVPacket {
	return *(**C.AVPacket)(unsafe.Pointer(p))
}

// cFrame returns the AVFrame behind f.
func cFrame(f *astiav.Frame) *C.AVFrame {
	return (*C.AVFrame)(f.UnsafePointer())
}

// checkPacketLayout fails if cPacket does not see the same packet go-astiav sees.
func checkPacketLayout(p *astiav.Packet) error {
	cp := cPacket(p)
	old := p.Size()
	defer p.SetSize(old)
	p.SetSize(old + 12345)
	if cp == nil || int(cp.size) != old+12345 {
		return errors.New("codec: go-astiav's Packet layout is not the one this package was written for")
	}
	return nil
}

// packetBytes returns a view of p's payload (valid until p is unreferenced).
func packetBytes(p *astiav.Packet) []byte {
	cp := cPacket(p)
	if cp.data == nil || cp.size <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(cp.data)), int(cp.size))
}

// newPayloadPacket allocates a packet with a reference-counted buffer of capacity bytes plus
// FFmpeg's input padding, reused for every payload handed to a decoder.
func newPayloadPacket(capacity int) (*astiav.Packet, error) {
	p := astiav.AllocPacket()
	if p == nil {
		return nil, errors.New("codec: allocating packet failed")
	}
	if err := p.AllocPayload(capacity); err != nil {
		p.Free()
		return nil, fmt.Errorf("codec: allocating %d-byte packet buffer: %w", capacity, err)
	}
	if err := checkPacketLayout(p); err != nil {
		p.Free()
		return nil, err
	}
	return p, nil
}

// setPacketPayload copies b into p's own buffer (capacity bytes) and sets its size. The
// decoder takes a reference to the buffer while it decodes and drops it before returning the
// frame; should it still hold one, a fresh buffer is allocated rather than overwriting data
// the decoder may read.
func setPacketPayload(p *astiav.Packet, b []byte, capacity int) error {
	if !p.IsWritable() {
		p.Unref()
		if err := p.AllocPayload(capacity); err != nil {
			return fmt.Errorf("codec: reallocating packet buffer: %w", err)
		}
	}
	cp := cPacket(p)
	// The buffer really holds capacity + AV_INPUT_BUFFER_PADDING_SIZE bytes; the padding after
	// the payload must be zero so that bit readers overreading a damaged payload see zeros.
	buf := unsafe.Slice((*byte)(unsafe.Pointer(cp.data)), capacity+C.AV_INPUT_BUFFER_PADDING_SIZE)
	n := copy(buf, b)
	clear(buf[n : n+C.AV_INPUT_BUFFER_PADDING_SIZE])
	p.SetSize(n)
	return nil
}

// frameSamples returns a view of the samples of a packed mono S16 frame.
func frameSamples(f *astiav.Frame) []int16 {
	cf := cFrame(f)
	if cf.data[0] == nil || cf.nb_samples <= 0 {
		return nil
	}
	return unsafe.Slice((*int16)(unsafe.Pointer(cf.data[0])), int(cf.nb_samples))
}

// newPCMFrame allocates a packed mono S16 frame at rate with a buffer for capacity samples;
// its sample count starts at capacity.
func newPCMFrame(rate, capacity int) (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	if f == nil {
		return nil, errors.New("codec: allocating frame failed")
	}
	f.SetSampleFormat(astiav.SampleFormatS16)
	f.SetChannelLayout(astiav.ChannelLayoutMono)
	f.SetSampleRate(rate)
	f.SetNbSamples(capacity)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("codec: allocating %d-sample frame buffer: %w", capacity, err)
	}
	return f, nil
}

// growPCMFrame makes f's buffer (rate Hz, capacity samples) hold at least n samples and be
// writable, reallocating it only when a larger input than ever before arrives or when FFmpeg
// still holds a reference to it. It returns the new capacity.
func growPCMFrame(f *astiav.Frame, rate, capacity, n int) (int, error) {
	if n <= capacity && f.IsWritable() {
		return capacity, nil
	}
	if n < capacity {
		n = capacity
	}
	f.Unref() // resets every field, so set them all again
	f.SetSampleRate(rate)
	f.SetSampleFormat(astiav.SampleFormatS16)
	f.SetChannelLayout(astiav.ChannelLayoutMono)
	f.SetNbSamples(n)
	if err := f.AllocBuffer(0); err != nil {
		return 0, fmt.Errorf("codec: growing frame buffer to %d samples: %w", n, err)
	}
	return n, nil
}

// fillPCMFrame copies pcm into f (capacity ≥ len(pcm)) and sets its sample count.
func fillPCMFrame(f *astiav.Frame, pcm []int16) {
	f.SetNbSamples(len(pcm))
	copy(frameSamples(f), pcm)
}

// checkPCMFrame verifies that a frame FFmpeg produced is the packed mono S16 we asked for.
func checkPCMFrame(f *astiav.Frame, rate int) error {
	cf := cFrame(f)
	if astiav.SampleFormat(cf.format) != astiav.SampleFormatS16 || cf.ch_layout.nb_channels != 1 || int(cf.sample_rate) != rate {
		return fmt.Errorf("codec: FFmpeg produced format %d, %d channels, %d Hz; want s16 mono %d Hz",
			int(cf.format), int(cf.ch_layout.nb_channels), int(cf.sample_rate), rate)
	}
	return nil
}

// setDecodeFEC sets the libopus decoder's decode_fec option (added by
// ffmpeg/patches/libopusdec-output-rate-fec.patch) on an open context. A C string constant and
// an integer: no Go allocation, so a loss costs none.
func setDecodeFEC(ctx *astiav.CodecContext, on bool) error {
	v := C.int(0)
	if on {
		v = 1
	}
	if ret := C.rtpbridge_set_decode_fec((*C.AVCodecContext)(ctx.UnsafePointer()), v); ret < 0 {
		return fmt.Errorf("codec: setting the libopus decoder's decode_fec option: %w", astiav.Error(ret))
	}
	return nil
}

// setOpusLoss sets an open libopus encoder's expected loss (percent) and in-band FEC, taken
// from the next frame on. Constant C strings and integers: no Go allocation.
func setOpusLoss(ctx *astiav.CodecContext, fec bool, loss int) error {
	v := C.int(0)
	if fec {
		v = 1
	}
	if ret := C.rtpbridge_set_opus_loss((*C.AVCodecContext)(ctx.UnsafePointer()), v, C.int(loss)); ret < 0 {
		return fmt.Errorf("codec: setting the libopus encoder's fec and packet_loss options: %w", astiav.Error(ret))
	}
	return nil
}

// opusLossRuntime reports whether the libopus encoder of ctx takes packet_loss and fec while
// encoding (ffmpeg/patches/libopusenc-runtime-fec.patch).
func opusLossRuntime(ctx *astiav.CodecContext) bool {
	return C.rtpbridge_opus_loss_runtime((*C.AVCodecContext)(ctx.UnsafePointer())) != 0
}

// errClosed is returned by every method called after Close.
var errClosed = errors.New("codec: used after Close")

// freeFrame, freePacket and the like free an FFmpeg object if it was allocated, so Close can
// run on a half-built value and twice.
func freeFrame(f **astiav.Frame) {
	if *f != nil {
		(*f).Free()
		*f = nil
	}
}

func freePacket(p **astiav.Packet) {
	if *p != nil {
		(*p).Free()
		*p = nil
	}
}

func freeCodecContext(c **astiav.CodecContext) {
	if *c != nil {
		(*c).Free()
		*c = nil
	}
}

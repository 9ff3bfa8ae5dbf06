package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// wavAudio is a decoded PCM WAV file: 16-bit samples, down-mixed to mono.
type wavAudio struct {
	Rate     int
	Channels int // in the file; Samples is mono whatever this is
	Samples  []int16
}

// WAV format tags (fmt chunk audioFormat).
const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
)

// parseWAV reads a RIFF/WAVE file holding 16-bit little-endian integer PCM (plain or
// WAVE_FORMAT_EXTENSIBLE with the PCM sub-format). Chunks other than fmt and data are skipped
// (with RIFF's pad byte after odd-sized chunks); several channels are averaged to mono. A data
// chunk claiming more bytes than the file holds (streamed WAVs write 0xFFFFFFFF) is read up
// to the end of the file.
func parseWAV(b []byte) (*wavAudio, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("wav: not a RIFF/WAVE file")
	}
	var (
		haveFmt  bool
		format   uint16
		channels int
		rate     int
		bits     int
		data     []byte
		haveData bool
	)
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int64(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := int64(off + 8)
		end := body + size
		if end > int64(len(b)) {
			if id != "data" {
				return nil, fmt.Errorf("wav: chunk %q of %d bytes runs past the end of the file", id, size)
			}
			end = int64(len(b))
		}
		chunk := b[body:end]
		switch id {
		case "fmt ":
			if len(chunk) < 16 {
				return nil, fmt.Errorf("wav: fmt chunk of %d bytes, want at least 16", len(chunk))
			}
			format = binary.LittleEndian.Uint16(chunk[0:2])
			channels = int(binary.LittleEndian.Uint16(chunk[2:4]))
			rate = int(binary.LittleEndian.Uint32(chunk[4:8]))
			bits = int(binary.LittleEndian.Uint16(chunk[14:16]))
			if format == wavFormatExtensible {
				// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the GUID's first
				// two bytes are the real format tag.
				if len(chunk) < 40 {
					return nil, errors.New("wav: WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
				}
				format = binary.LittleEndian.Uint16(chunk[24:26])
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New("wav: data chunk before fmt chunk")
			}
			data, haveData = chunk, true
		}
		if haveData {
			break
		}
		off = int(end)
		if size%2 == 1 {
			off++ // RIFF pad byte
		}
	}
	switch {
	case !haveFmt:
		return nil, errors.New("wav: no fmt chunk")
	case !haveData:
		return nil, errors.New("wav: no data chunk")
	case format != wavFormatPCM:
		return nil, fmt.Errorf("wav: format tag %#x, only integer PCM is supported", format)
	case bits != 16:
		return nil, fmt.Errorf("wav: %d bits per sample, only 16 is supported", bits)
	case channels < 1:
		return nil, fmt.Errorf("wav: %d channels", channels)
	case rate <= 0:
		return nil, fmt.Errorf("wav: sample rate %d", rate)
	}
	frame := 2 * channels
	n := len(data) / frame
	if n == 0 {
		return nil, errors.New("wav: no samples")
	}
	out := make([]int16, n)
	for i := range out {
		sum := 0
		for c := 0; c < channels; c++ {
			sum += int(int16(binary.LittleEndian.Uint16(data[i*frame+2*c:])))
		}
		out[i] = int16(sum / channels)
	}
	return &wavAudio{Rate: rate, Channels: channels, Samples: out}, nil
}

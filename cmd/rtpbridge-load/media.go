package main

import (
	"fmt"
	"os"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// encodeFile reads a 16-bit PCM WAV file and encodes it, once, into 20 ms RTP payloads of c
// with pkg/codec (libswresample to the encoder's rate, libavcodec/libopus to encode). Senders
// loop over the returned list.
func encodeFile(path string, c codec.Codec) ([][]byte, *wavAudio, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	w, err := parseWAV(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := encodePCM(w.Samples, w.Rate, c)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, w, nil
}

// encodePCM encodes mono PCM at rate Hz into 20 ms payloads of c.
func encodePCM(pcm []int16, rate int, c codec.Codec) ([][]byte, error) {
	codec.QuietFFmpeg(false) // libopus complains about its look-ahead queue on close
	enc, err := codec.NewStreamEncoder(c, rate, codec.DefaultOptions())
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	out, err := enc.Encode(nil, pcm)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", c, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("encoding %s: the audio is shorter than one 20 ms frame", c)
	}
	payloads := make([][]byte, len(out))
	for i, p := range out {
		payloads[i] = append([]byte(nil), p...)
	}
	return payloads, nil
}

package session

import (
	"encoding/binary"
	"testing"
)

// FuzzScaleDTMFDuration feeds arbitrary RFC 4733 payloads through the clock rescaling done when
// telephone-event crosses between 8 kHz and 48 kHz legs: never a panic, the inbound payload is
// never modified, and the duration field is scaled and clamped exactly.
func FuzzScaleDTMFDuration(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x03, 0x20}, uint32(8000), uint32(48000))
	f.Add([]byte{1, 0x0a, 0xff, 0xff}, uint32(8000), uint32(48000))
	f.Add([]byte{1, 0x0a, 0x12, 0xc0}, uint32(48000), uint32(8000))
	f.Add([]byte{}, uint32(8000), uint32(48000))
	f.Add([]byte{1, 2, 3}, uint32(0), uint32(48000))
	f.Fuzz(func(t *testing.T, payload []byte, from, to uint32) {
		orig := append([]byte(nil), payload...)
		var scratch [1500]byte
		out := scaleDTMFDuration(scratch[:], payload, from, to)
		if string(payload) != string(orig) {
			t.Fatal("inbound payload modified")
		}
		if from == to || from == 0 || len(payload) < 4 || len(payload) > len(scratch) {
			if string(out) != string(payload) {
				t.Fatal("payload changed although no scaling applies")
			}
			return
		}
		if len(out) != len(payload) || string(out[:2]) != string(payload[:2]) || string(out[4:]) != string(payload[4:]) {
			t.Fatal("bytes other than the duration changed")
		}
		want := min(uint64(binary.BigEndian.Uint16(payload[2:4]))*uint64(to)/uint64(from), 65535)
		if got := binary.BigEndian.Uint16(out[2:4]); uint64(got) != want {
			t.Fatalf("duration %d, want %d", got, want)
		}
	})
}

package server_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// twoToneCall plays party A's 440 Hz for 2 s and, from 0.5 s on, party B's 1000 Hz for 1.5 s,
// both PCMU, paced by one clock so their relative timing is exact.
func twoToneCall(t *testing.T, a, b *leg) {
	t.Helper()
	toneA := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 2*8000, 0.3, 440))
	toneB := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 3*8000/2, 0.3, 1000))
	ha := rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 0xa}
	hb := rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 0xb}
	start := time.Now()
	for i := 0; i < 100; i++ {
		a.peer.Send(ha, toneA[i])
		ha.SequenceNumber++
		ha.Timestamp += 160
		if i >= 25 {
			b.peer.Send(hb, toneB[i-25])
			hb.SequenceNumber++
			hb.Timestamp += 160
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}
}

// checkTwoTones judges a decoded two-party recording: with two channels, channel 1 holds only
// A's 440 Hz and channel 2 only B's 1000 Hz, B starting 0.5 s after A; with one, both tones.
// It returns A's and B's onsets in seconds.
func checkTwoTones(t *testing.T, path string, channels int, minSNR float64) (float64, float64) {
	t.Helper()
	const rate = 16000
	ch := audiotest.DecodeChannels(t, path, channels, rate)
	if channels == 1 {
		on := float64(audiotest.Onset(ch[0], rate)) / rate
		fit, err := audiotest.FitTones(ch[0][int((on+1.0)*rate):int((on+1.8)*rate)], rate, 440, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if fit.SNR() < minSNR || fit.Amplitudes[0] < 0.2 || fit.Amplitudes[1] < 0.2 {
			t.Fatalf("%s mixed: SNR %.1f dB, amplitudes %v", filepath.Base(path), fit.SNR(), fit.Amplitudes)
		}
		return on, on
	}
	onA := float64(audiotest.Onset(ch[0], rate)) / rate
	onB := float64(audiotest.Onset(ch[1], rate)) / rate
	if onA < 0 || onB < 0 || math.Abs(onB-onA-0.5) > 0.02 {
		t.Fatalf("%s: A starts at %.3f s, B at %.3f s: want B 0.5 s after A (±20 ms)", filepath.Base(path), onA, onB)
	}
	for _, c := range []struct {
		pcm          []int16
		freq, silent float64
	}{{ch[0], 440, 1000}, {ch[1], 1000, 440}} {
		seg := c.pcm[int((onB+0.2)*rate):int((onB+1.2)*rate)]
		fit, err := audiotest.FitTones(seg, rate, c.freq, c.silent)
		if err != nil {
			t.Fatal(err)
		}
		if fit.SNR() < minSNR || fit.Amplitudes[0] < 0.2 || fit.Amplitudes[1] > 0.003 {
			t.Fatalf("%s: channel of %v Hz: SNR %.1f dB, amplitudes %v", filepath.Base(path), c.freq, fit.SNR(), fit.Amplitudes)
		}
		t.Logf("%s: channel of %v Hz: SNR %.1f dB, other tone %.5f", filepath.Base(path), c.freq, fit.SNR(), fit.Amplitudes[1])
	}
	return onA, onB
}

// TestRecordingDecodedCall records a two-party call as WAV (separate), Ogg (mixed) and PCAP at
// once: the WAV's channels hold one party each, aligned; the Ogg holds both; pcap2wav of the
// PCAP gives the same audio as the live WAV.
func TestRecordingDecodedCall(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	dir := srv.Config.RecordingDir
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	wavRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "call.wav"), "format": "wav", "layout": "separate"})
	oggRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "call.ogg"), "format": "ogg", "sample_rate": 48000})
	pcapRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "call.pcap")})
	legRec := startRecording(t, c, map[string]any{"endpoint_id": b.id, "file_path": filepath.Join(dir, "b.wav"), "format": "wav", "layout": "separate", "sample_rate": 8000})
	twoToneCall(t, a, b)
	time.Sleep(100 * time.Millisecond)
	wav := stopRecording(t, c, wavRec)
	stopRecording(t, c, oggRec)
	pcap := stopRecording(t, c, pcapRec)
	stopRecording(t, c, legRec)
	// The PCAP holds the 175 media packets and the call's RTCP (§17), all counted in its
	// packets; wait until the writer has put every one of them in the file.
	var rtpN, rtcpN int
	testserver.Eventually(t, 10*time.Second, "call.pcap complete", func() bool {
		rtpN = len(readPCAP(t, filepath.Join(dir, "call.pcap"), false))
		rtcpN = len(readPCAP(t, filepath.Join(dir, "call.pcap"), true))
		return uint64(rtpN+rtcpN) == pcap.Packets
	})
	if wav.Packets < 170 || wav.DroppedPackets != 0 || rtpN != 175 {
		t.Fatalf("wav %+v, pcap %+v (%d RTP, %d RTCP in the file)", wav, pcap, rtpN, rtcpN)
	}
	for _, f := range []struct {
		name, codec    string
		channels, rate int
		minDur, maxDur float64
	}{
		{"call.wav", "pcm_s16le", 2, 16000, 1.9, 2.6}, {"call.ogg", "opus", 1, 48000, 1.9, 2.6}, {"b.wav", "pcm_s16le", 1, 8000, 1.4, 2.6},
	} {
		path := filepath.Join(dir, f.name)
		testserver.Eventually(t, 10*time.Second, f.name+" finished", func() bool {
			p := audiotest.FFprobe(t, path)
			return p.Duration >= f.minDur
		})
		p := audiotest.FFprobe(t, path)
		if p.Codec != f.codec || p.Channels != f.channels || p.SampleRate != f.rate || p.Duration > f.maxDur {
			t.Fatalf("%s: %+v", f.name, p)
		}
	}
	liveA, liveB := checkTwoTones(t, filepath.Join(dir, "call.wav"), 2, 30)
	checkTwoTones(t, filepath.Join(dir, "call.ogg"), 1, 15)
	// The leg recording holds B alone, from B's first audio on (its first 0.5 s is silence).
	bOnly := audiotest.DecodeChannels(t, filepath.Join(dir, "b.wav"), 1, 8000)[0]
	if f := audiotest.DominantFrequency(bOnly[8000:14000], 8000); math.Abs(f-1000) > 5 {
		t.Fatalf("b.wav: dominant %.1f Hz", f)
	}

	// pcap2wav of the PCAP of the same call.
	in, err := os.Open(filepath.Join(dir, "call.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	convPath := filepath.Join(t.TempDir(), "converted.wav")
	out, err := os.Create(convPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := recording.ConvertPCAP(in, out, recording.ConvertOptions{Container: "wav", Separate: true, Rate: 16000})
	out.Close()
	if err != nil || st.Parties != 2 || st.Packets != 175 {
		t.Fatalf("ConvertPCAP: %+v %v", st, err)
	}
	convA, convB := checkTwoTones(t, convPath, 2, 30)
	// Same audio: the same parties' tones with the same relative timing, and sample for sample
	// close once the two files' different starting moments are aligned.
	if d := (convB - convA) - (liveB - liveA); math.Abs(d) > 0.02 {
		t.Fatalf("B−A offset: live %.3f s, converted %.3f s", liveB-liveA, convB-convA)
	}
	live := audiotest.DecodeChannels(t, filepath.Join(dir, "call.wav"), 2, 16000)
	conv := audiotest.DecodeChannels(t, convPath, 2, 16000)
	// The converted file starts at the PCAP's first packet, the live one when recording.start
	// ran: line them up by A's onset, then let the comparison find the best match within 20 ms
	// (a steady tone matches itself every period, so the onsets above judge the timing).
	const r, slack = 16000, 320
	from := int((liveB + 0.1) * r)
	shift := from + int((convA-liveA)*r) - slack
	for i := range live {
		ref := live[i][from : from+r]
		snr, lag := audiotest.SegmentalSNR(ref, conv[i][shift:shift+r+2*slack], 2*slack, 320)
		t.Logf("channel %d: converted vs live: segmental SNR %.1f dB (matched %+.1f ms from the onsets' alignment)", i+1, snr, float64(lag-slack)/16)
		if snr < 20 {
			t.Fatalf("channel %d: pcap2wav differs from the live recording: segmental SNR %.1f dB", i+1, snr)
		}
	}
}

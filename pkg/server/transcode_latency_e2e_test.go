package server_test

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// cliResample converts pcm from one rate to another with the Debian ffmpeg CLI (its own
// libswresample: output aligned with the input, no delay).
func cliResample(t *testing.T, pcm []int16, from, to int) []int16 {
	t.Helper()
	if from == to {
		return pcm
	}
	return audiotest.PCMFromBytes(audiotest.FFmpegEncode(t, pcm, from, "s16le", "pcm_s16le", "-ar", strconv.Itoa(to)))
}

// TestTranscodeLatencyG711G722 sends speech, paced like a real call, from a G.711 peer to a
// G.722 peer and back through the real server. Every packet sent must come out at once: B
// receives as many packets as A sent (the last one included), each within half a frame of
// its source packet rather than with the next one. And the delay the server adds to the audio,
// measured by cross-correlation of what B decodes (independently) with what A sent (decoded
// independently), less the G.722 codec's own delay on the same signal, is at most 3 ms: the
// 8 ↔ 16 kHz resampler's 2 ms look-ahead. (Before, re-framing held each frame until the next
// packet: 22 ms, and the last frame was never sent.)
func TestTranscodeLatencyG711G722(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	speech := audiotest.Speech(t)
	var mu sync.Mutex
	var report []string
	t.Cleanup(func() {
		sort.Strings(report)
		t.Logf("end to end, speech paced at 20 ms:\n%s", strings.Join(report, "\n"))
	})
	for _, pair := range [][2]xcodec{{xPCMU, xG722}, {xPCMA, xG722}, {xG722, xPCMU}, {xG722, xPCMA}} {
		src, dst := pair[0], pair[1]
		t.Run(src.name+"-"+dst.name, func(t *testing.T) {
			t.Parallel()
			srcRate, dstRate := audiotest.CodecSampleRate(src.name), audiotest.CodecSampleRate(dst.name)
			payloads := audiotest.EncodePayloads(t, src.name, cliResample(t, speech, 16000, srcRate))
			c := testserver.Dial(t, srv)
			c.CreateSession()
			a := offerLeg(t, c, src)
			b, bPT := ownOfferLeg(t, c, dst)

			n := len(payloads)
			sent := make([]time.Time, n)
			h := rtp.Header{PayloadType: src.pt, SequenceNumber: 4000, Timestamp: 90000, SSRC: 0x1a7e, Marker: true}
			start := time.Now()
			for i, p := range payloads {
				sent[i] = time.Now()
				a.peer.Send(h, p)
				h.SequenceNumber++
				h.Timestamp += src.step
				h.Marker = false
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
			}
			got := collectQuiet(b.peer, n, 500*time.Millisecond, 5*time.Second)
			if len(got) != n {
				t.Fatalf("B received %d packets for %d sent: every packet's frame must come out, the last one too", len(got), n)
			}
			checkOutgoing(t, got, bPT, dst.step)
			checkPayloadSizes(t, dst, got)
			lat := make([]float64, n)
			for i := range got {
				lat[i] = float64(got[i].At.Sub(sent[i])) / float64(time.Millisecond)
			}
			sort.Float64s(lat)
			median, p95 := lat[n/2], lat[n*95/100]
			if median > 10 {
				t.Errorf("a packet's frame reaches B %.1f ms (median) after the packet was sent, want it at once (< 10 ms)", median)
			}

			// Audio delay: B's audio against A's, both decoded independently, at B's rate.
			ref := cliResample(t, audiotest.DecodePayloads(t, src.name, payloads), srcRate, dstRate)
			out := audiotest.DecodePayloads(t, dst.name, payloadsOf(got))
			direct := audiotest.DecodePayloads(t, dst.name, audiotest.EncodePayloads(t, dst.name, ref))
			maxLag := dstRate / 20
			total, corr := audiotest.Delay(ref, out, maxLag)
			codecOnly, _ := audiotest.Delay(ref, direct, maxLag)
			ms := func(samples float64) float64 { return samples * 1000 / float64(dstRate) }
			added := ms(total - codecOnly)
			line := fmt.Sprintf("%-5s→%-5s audio delay added %.2f ms (total %.2f, %s alone %.2f, correlation %.3f); "+
				"packet in → frame out: median %.2f ms, p95 %.2f ms; %d of %d packets", src.name, dst.name, added, ms(total),
				dst.name, ms(codecOnly), corr, median, p95, len(got), n)
			t.Log(line)
			mu.Lock()
			report = append(report, line)
			mu.Unlock()
			if corr < 0.9 {
				t.Errorf("speech correlation %.3f", corr)
			}
			if added > 3 || added < -0.5 {
				t.Errorf("the server adds %.2f ms to the audio, want at most 3 ms", added)
			}
		})
	}
}

// TestOpusFECFollowsReceiverReports: a G.722 peer talks (speech, paced at 20 ms) to an Opus
// peer that offered useinbandfec=1. While the Opus peer reports no loss, the stream carries
// no in-band FEC (libopus's full quality); once it sends a receiver report of 10 % loss on
// our stream, FEC is in the stream within a fraction of a second, and the far side recovers
// lost frames from it: libopus's own decoder (opus_demo with a loss file) rebuilds a lost
// frame far closer to the original than its PLC does for a frame lost before the report.
func TestOpusFECFollowsReceiverReports(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := offerLeg(t, c, xG722)
	peer := rtppeer.New(t)
	var res struct {
		EndpointID string `json:"endpoint_id"`
		SDPAnswer  string `json:"sdp_answer"`
	}
	c.MustCall("endpoint.create_from_offer", map[string]any{
		"sdp": peer.Offer([]string{xOpus.format()}, "a=fmtp:97 minptime=10;useinbandfec=1"), "direction": "sendrecv",
	}, &res)
	if !strings.Contains(res.SDPAnswer, "useinbandfec=1") {
		t.Fatalf("answer does not echo useinbandfec=1:\n%s", res.SDPAnswer)
	}
	peer.RemoteFromSDP(res.SDPAnswer, false)

	payloads := audiotest.EncodePayloads(t, "G722", audiotest.Speech(t))
	n := len(payloads)
	const reportAt = 100 // 2 s in
	var reported time.Time
	h := rtp.Header{PayloadType: xG722.pt, SequenceNumber: 7, Timestamp: 1000, SSRC: 0x6722, Marker: true}
	start := time.Now()
	var got []rtppeer.Packet
	for i, p := range payloads {
		if i == reportAt {
			got = append(got, rtppeer.Receive(peer.Packets, i-len(got), time.Second)...)
			if len(got) == 0 {
				t.Fatal("nothing received from rtpbridge")
			}
			// 26/256 = 10 % of our packets lost, on the SSRC rtpbridge sends from.
			peer.SendRTCP(&rtcp.ReceiverReport{SSRC: 0xb0b, Reports: []rtcp.ReceptionReport{{
				SSRC: got[0].Header.SSRC, FractionLost: 26, TotalLost: 20, LastSequenceNumber: uint32(got[len(got)-1].Header.SequenceNumber),
			}}})
			reported = time.Now()
		}
		a.peer.Send(h, p)
		h.SequenceNumber++
		h.Timestamp += xG722.step
		h.Marker = false
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}
	got = append(got, collectQuiet(peer, n-len(got), 500*time.Millisecond, 5*time.Second)...)
	if len(got) != n {
		t.Fatalf("received %d packets for %d sent", len(got), n)
	}
	packets := payloadsOf(got)

	var fecBefore, fecAfter int
	first := -1
	for i, p := range packets {
		switch {
		case !audiotest.OpusHasLBRR(p):
		case got[i].At.Before(reported):
			fecBefore++
		default:
			fecAfter++
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		t.Fatal("no packet carries in-band FEC after the loss report")
	}
	switchTime := got[first].At.Sub(reported)
	t.Logf("packets with in-band FEC: %d before the 10 %% loss report, %d of %d after; the first %v after the report",
		fecBefore, fecAfter, n-reportAt, switchTime.Round(time.Millisecond))
	if fecBefore > 0 {
		t.Errorf("%d packets carry in-band FEC before any loss was reported", fecBefore)
	}
	if switchTime > 2*time.Second {
		t.Errorf("FEC in the stream %v after the loss report, want within 2 s", switchTime)
	}
	if fecAfter < (n-reportAt)/2 {
		t.Errorf("only %d of %d packets carry FEC after the loss report", fecAfter, n-reportAt)
	}

	// The far side: every 7th packet lost, before the report and after the switch.
	const rate = 16000
	before, after := map[int]bool{}, map[int]bool{}
	for i := 20; i < n-1; i += 7 {
		switch {
		case i < reportAt:
			before[i] = true
		case i > first+1:
			after[i] = true
		}
	}
	intact := audiotest.OpusDemoDecode(t, packets, rate, nil)
	lossy := audiotest.OpusDemoDecode(t, packets, rate, func(i int) bool { return before[i] || after[i] })
	if len(lossy) != len(intact) {
		t.Fatalf("decoded %d samples with losses, %d intact", len(lossy), len(intact))
	}
	snr := func(frames map[int]bool) float64 {
		var sig, noise float64
		for i := range frames {
			for j := i * rate / 50; j < (i+1)*rate/50 && j < len(intact); j++ {
				x, d := float64(intact[j]), float64(lossy[j])-float64(intact[j])
				sig += x * x
				noise += d * d
			}
		}
		return 10 * math.Log10(sig/noise)
	}
	sb, sa := snr(before), snr(after)
	t.Logf("lost frames rebuilt by libopus (opus_demo) against the intact decode: %.1f dB before the report (PLC), %.1f dB after (FEC)", sb, sa)
	if sa < sb+4 {
		t.Errorf("lost frames after the loss report rebuilt at %.1f dB, before it %.1f dB: want FEC ≥ 4 dB better", sa, sb)
	}
}

// TestTranscodeFlushOnSourceRemoval: a G.711 peer sending 30 ms packets to a G.722 peer leaves
// part of a 20 ms frame in the pipeline after each odd packet. When the source endpoint is
// removed, what the pipeline still held goes out as one last frame, on the same continuous
// stream: 5 packets (150 ms) give 7 frames at once and the 8th on removal.
func TestTranscodeFlushOnSourceRemoval(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := offerLeg(t, c, xPCMU)
	b, bPT := ownOfferLeg(t, c, xG722)
	ulaw := audiotest.FFmpegEncode(t, audiotest.Tone(8000, 1200, 0.25, 1000), 8000, "mulaw", "pcm_mulaw")
	h := rtp.Header{PayloadType: xPCMU.pt, SequenceNumber: 1, Timestamp: 0, SSRC: 0x30, Marker: true}
	for i := 0; i < 5; i++ {
		a.peer.Send(h, ulaw[i*240:(i+1)*240])
		h.SequenceNumber++
		h.Timestamp += 240
		h.Marker = false
	}
	got := rtppeer.Receive(b.peer.Packets, 7, wait)
	if len(got) != 7 {
		t.Fatalf("B received %d packets for 150 ms, want 7 at once", len(got))
	}
	b.peer.ExpectNone(100 * time.Millisecond)
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": a.id}, nil)
	last := rtppeer.Receive(b.peer.Packets, 1, wait)
	if len(last) != 1 {
		t.Fatal("no last frame after the source was removed")
	}
	got = append(got, last...)
	checkOutgoing(t, got, bPT, xG722.step)
	checkPayloadSizes(t, xG722, got)
	b.peer.ExpectNone(100 * time.Millisecond)
}

package sdes

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
)

// Interop with an independent SRTP implementation: the Debian ffmpeg CLI
// (libavformat/srtp.c, its own AES-CM/HMAC code). ffmpeg's SRTP supports the
// two AES_CM_128 suites only, so the AEAD suites are covered by the pion
// round-trip tests alone.
//
// ffmpeg quirk: for the SDES name AES_CM_128_HMAC_SHA1_32 it also cuts the
// SRTCP tag to 32 bits (libavformat/srtp.c ff_srtp_set_crypto), while
// RFC 4568 §6.2.2 keeps SRTCP at 80 bits, as pion/srtp and libsrtp do. So
// SRTCP is exchanged with ffmpeg only under AES_CM_128_HMAC_SHA1_80.

const ffmpegPath = "/usr/bin/ffmpeg"

var interopSuites = [...]Suite{SuiteAESCM128HMACSHA1_80, SuiteAESCM128HMACSHA1_32}

// ffmpegSRTCPCompatible reports whether ffmpeg's SRTCP for s follows the RFC.
func ffmpegSRTCPCompatible(s Suite) bool { return s == SuiteAESCM128HMACSHA1_80 }

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ffmpegPath); err != nil {
		t.Skipf("SRTP interop test needs %s (Debian package ffmpeg): %v", ffmpegPath, err)
	}
}

// G.711 µ-law (ITU-T G.711, the classic Sun g711.c algorithm), kept here so
// the check does not trust any code under test.
func ulawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	x, sign := int(s), 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, clip) + bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func ulawDecode(u byte) int16 {
	u = ^u
	x := ((int(u&0x0f) << 3) + 0x84) << ((u >> 4) & 7)
	if u&0x80 != 0 {
		return int16(0x84 - x)
	}
	return int16(x - 0x84)
}

// goertzelPower is the signal power at freq (RFC-free textbook Goertzel).
func goertzelPower(pcm []int16, freq, rate float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// dominantFreq scans 100..3900 Hz in 10 Hz steps.
func dominantFreq(pcm []int16, rate float64) (best float64, share float64) {
	var bestP, total float64
	for f := 100.0; f <= 3900; f += 10 {
		p := goertzelPower(pcm, f, rate)
		total += p
		if p > bestP {
			best, bestP = f, p
		}
	}
	// Share of the scan's power within ±30 Hz of the peak: a clean tone
	// concentrates nearly everything there, noise or garbage does not.
	var near float64
	for f := best - 30; f <= best+30; f += 10 {
		near += goertzelPower(pcm, f, rate)
	}
	return best, near / total
}

func checkTone(t *testing.T, pcm []int16, what string) {
	t.Helper()
	if len(pcm) < 4000 {
		t.Fatalf("%s: only %d samples", what, len(pcm))
	}
	f, share := dominantFreq(pcm, 8000)
	t.Logf("%s: %d samples, dominant %.0f Hz, %.1f%% of power near it", what, len(pcm), f, share*100)
	if math.Abs(f-1000) > 20 || share < 0.9 {
		t.Fatalf("%s: dominant %.0f Hz (%.2f of power), want a clean 1000 Hz tone", what, f, share)
	}
}

func TestG711AndGoertzelHelpers(t *testing.T) {
	for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000, 32767, -32768} {
		got := ulawDecode(ulawEncode(s))
		if d := math.Abs(float64(got) - float64(s)); d > math.Max(8, math.Abs(float64(s))/16) {
			t.Errorf("µ-law round trip %d → %d", s, got)
		}
	}
	if ulawEncode(0) != 0xff || ulawDecode(0xff) != 0 || ulawDecode(0x00) != -32124 {
		t.Error("µ-law reference points wrong")
	}
	pcm := tone(8000, 1500, 0)
	if f, share := dominantFreq(pcm, 8000); f != 1500 || share < 0.9 {
		t.Errorf("Goertzel scan found %.0f Hz (%.2f)", f, share)
	}
}

// tone makes n samples of a sine at freq Hz (8 kHz), amplitude 10000,
// starting at sample index off.
func tone(n int, freq float64, off int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(10000 * math.Sin(2*math.Pi*freq*float64(off+i)/8000))
	}
	return out
}

// TestInteropFFmpegSendsSRTP: ffmpeg encrypts a 1 kHz µ-law tone with a key
// we hand it; we decrypt every SRTP and SRTCP packet and check the tone.
func TestInteropFFmpegSendsSRTP(t *testing.T) {
	needFFmpeg(t)
	for _, s := range interopSuites {
		t.Run(s.String(), func(t *testing.T) {
			peerKey := mustKey(t, s) // the key ffmpeg sends with
			tr, err := NewTransport(mustKey(t, s))
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.SetRemote(peerKey); err != nil {
				t.Fatal(err)
			}
			rtpConn, rtcpConn := rtppeer.ListenPair(t)
			defer rtpConn.Close()
			defer rtcpConn.Close()
			port := rtpConn.LocalAddr().(*net.UDPAddr).Port

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ffmpegPath, "-hide_banner", "-nostdin", "-loglevel", "error",
				"-re", "-f", "lavfi", "-i", "sine=frequency=1000:duration=1",
				"-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw", "-f", "rtp",
				"-seq", "65530", // cross 65535→0 early: ffmpeg's ROC and ours must agree
				"-srtp_out_suite", s.String(),
				"-srtp_out_params", base64.StdEncoding.EncodeToString(peerKey.Keys[0].KeySalt),
				fmt.Sprintf("srtp://127.0.0.1:%d", port))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr

			type result struct {
				pcm       []int16
				ssrc      uint32
				pkts, bad int
				firstErr  error
				rtcpOK    int
				rtcpBad   int
				rtcpSSRC  uint32
				rtcpErr   error
				seqs      []uint16
			}
			var res result
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // SRTP reader: clear packets come out of UnprotectRTP
				defer wg.Done()
				buf := make([]byte, 2048)
				dec := make([]byte, 0, 2048)
				var h rtp.Header
				for {
					n, err := rtpConn.Read(buf)
					if err != nil {
						return
					}
					res.pkts++
					out, err := tr.UnprotectRTP(dec, buf[:n])
					if err != nil {
						res.bad++
						if res.firstErr == nil {
							res.firstErr = err
						}
						continue
					}
					hl, err := h.Unmarshal(out)
					if err != nil {
						res.bad++
						continue
					}
					res.ssrc = h.SSRC
					res.seqs = append(res.seqs, h.SequenceNumber)
					for _, b := range out[hl:] {
						res.pcm = append(res.pcm, ulawDecode(b))
					}
				}
			}()
			go func() { // SRTCP reader
				defer wg.Done()
				buf := make([]byte, 2048)
				for {
					n, err := rtcpConn.Read(buf)
					if err != nil {
						return
					}
					out, err := tr.UnprotectRTCP(nil, buf[:n])
					if err != nil {
						res.rtcpBad++
						res.rtcpErr = err
						continue
					}
					pkts, err := rtcp.Unmarshal(out)
					if err != nil {
						res.rtcpBad++
						res.rtcpErr = err
						continue
					}
					if sr, ok := pkts[0].(*rtcp.SenderReport); ok {
						res.rtcpSSRC = sr.SSRC
						res.rtcpOK++
					}
				}
			}()
			runErr := cmd.Run()
			// Let the last datagrams land, then stop the readers.
			deadline := time.Now().Add(300 * time.Millisecond)
			rtpConn.SetReadDeadline(deadline)
			rtcpConn.SetReadDeadline(deadline)
			wg.Wait()
			if runErr != nil {
				t.Fatalf("ffmpeg: %v\n%s", runErr, stderr.String())
			}
			if res.bad != 0 || res.pkts == 0 {
				t.Fatalf("%d of %d SRTP packets failed; first: %v", res.bad, res.pkts, res.firstErr)
			}
			t.Logf("%d SRTP packets, seq %d..%d, %d SRTCP SR", res.pkts, res.seqs[0], res.seqs[len(res.seqs)-1], res.rtcpOK)
			if res.seqs[0] != 65530 || res.seqs[len(res.seqs)-1] > 1000 {
				t.Fatalf("stream did not cross the sequence wrap as asked: %d..%d", res.seqs[0], res.seqs[len(res.seqs)-1])
			}
			checkTone(t, res.pcm, "ffmpeg → sdes")
			if !ffmpegSRTCPCompatible(s) {
				t.Logf("SRTCP not checked: ffmpeg uses a 32-bit SRTCP tag with %s (see top of file)", s)
				return
			}
			if res.rtcpBad != 0 || res.rtcpOK == 0 {
				t.Fatalf("SRTCP from ffmpeg: %d ok, %d bad (%v)", res.rtcpOK, res.rtcpBad, res.rtcpErr)
			}
			if res.rtcpSSRC != res.ssrc {
				t.Fatalf("SR SSRC %#x, RTP SSRC %#x", res.rtcpSSRC, res.ssrc)
			}
		})
	}
}

// TestInteropFFmpegReceivesSRTP: we encrypt a 1 kHz µ-law tone (sequence
// numbers crossing 65535→0) and SRTCP sender reports; ffmpeg, keyed by an
// a=crypto line in an SDP file, decrypts and writes s16le, which must hold
// the tone. ffmpeg logging any SRTP/SRTCP authentication failure fails it.
func TestInteropFFmpegReceivesSRTP(t *testing.T) {
	needFFmpeg(t)
	for _, s := range interopSuites {
		t.Run(s.String(), func(t *testing.T) {
			ourKey := mustKey(t, s)
			tr, err := NewTransport(ourKey)
			if err != nil {
				t.Fatal(err)
			}
			// Find a free port pair for ffmpeg, then release it for ffmpeg.
			a, b := rtppeer.ListenPair(t)
			port := a.LocalAddr().(*net.UDPAddr).Port
			a.Close()
			b.Close()

			dir := t.TempDir()
			sdpPath := filepath.Join(dir, "in.sdp")
			outPath := filepath.Join(dir, "out.raw")
			sdpText := strings.Join([]string{
				"v=0",
				"o=- 1 1 IN IP4 127.0.0.1",
				"s=sdes interop",
				"c=IN IP4 127.0.0.1",
				"t=0 0",
				fmt.Sprintf("m=audio %d RTP/SAVP 0", port),
				"a=rtpmap:0 PCMU/8000",
				"a=crypto:" + ourKey.String(),
				"",
			}, "\r\n")
			if err := os.WriteFile(sdpPath, []byte(sdpText), 0o600); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ffmpegPath, "-hide_banner", "-nostdin", "-loglevel", "warning",
				"-protocol_whitelist", "file,udp,rtp,srtp",
				"-i", sdpPath, "-t", "1.2", "-f", "s16le", "-ar", "8000", "-ac", "1", "-y", outPath)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			// Start the stream only once ffmpeg listens: a receiver that
			// first hears the stream after the wrap cannot know the ROC
			// (RFC 4771 §1) and would reject everything.
			if err := audiotest.WaitUDPBound(ctx, port); err != nil {
				t.Fatalf("ffmpeg never bound UDP port %d: %v\n%s", port, err, stderr.String())
			}
			conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rtcpConn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
			if err != nil {
				t.Fatal(err)
			}
			defer rtcpConn.Close()

			const ssrc = 0x0badcafe
			// The 22nd packet wraps 65535→0: ffmpeg decodes across the wrap,
			// so its ROC must agree with ours.
			const firstSeq = 65515
			seq := uint16(firstSeq)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: ssrc}}
			enc := make([]byte, 0, 1500)
			ticker := time.NewTicker(20 * time.Millisecond)
			defer ticker.Stop()
			var runErr error
			sent := 0
		loop:
			for {
				select {
				case runErr = <-done:
					break loop
				case <-ctx.Done():
					t.Fatalf("ffmpeg did not finish: %v\n%s", ctx.Err(), stderr.String())
				case <-ticker.C:
				}
				pcm := tone(160, 1000, sent*160)
				pl := make([]byte, 160)
				for i, v := range pcm {
					pl[i] = ulawEncode(v)
				}
				pkt.SequenceNumber, pkt.Timestamp, pkt.Payload = seq, uint32(sent*160), pl
				clear, err := pkt.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				out, err := tr.ProtectRTP(enc, clear)
				if err != nil {
					t.Fatal(err)
				}
				// ffmpeg may not be listening yet: ECONNREFUSED is expected then.
				_, _ = conn.Write(out)
				if sent%25 == 0 && ffmpegSRTCPCompatible(s) {
					sr := rtcp.SenderReport{SSRC: ssrc, RTPTime: uint32(sent * 160), PacketCount: uint32(sent), OctetCount: uint32(sent * 160)}
					raw, err := sr.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					c, err := tr.ProtectRTCP(nil, raw)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = rtcpConn.Write(c)
				}
				seq++
				sent++
			}
			if runErr != nil && !errors.Is(runErr, context.Canceled) {
				t.Fatalf("ffmpeg: %v\n%s", runErr, stderr.String())
			}
			if log := stderr.String(); strings.Contains(strings.ToLower(log), "hmac") || strings.Contains(log, "srtp") {
				t.Fatalf("ffmpeg reported SRTP trouble:\n%s", log)
			}
			raw, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatal(err)
			}
			pcm := make([]int16, len(raw)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			t.Logf("sent %d packets (seq %d→%d, wrap at packet %d), ffmpeg wrote %d samples",
				sent, firstSeq, uint16(firstSeq+sent-1), 65536-firstSeq+1, len(pcm))
			checkTone(t, pcm, "sdes → ffmpeg")
		})
	}
}

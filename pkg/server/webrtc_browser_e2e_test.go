package server_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// writeWAV writes mono 16-bit PCM at rate as a WAV file (Chromium's fake capture format).
func writeWAV(t *testing.T, path string, pcm []int16, rate int) {
	t.Helper()
	b := make([]byte, 44+2*len(pcm))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*rate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// pageStats is what the test page's stats() reports from getStats().
type pageStats struct {
	Inbound *struct {
		Packets float64 `json:"packets"`
		Energy  float64 `json:"energy"`
		Level   float64 `json:"level"`
	} `json:"inbound"`
	Outbound *struct {
		Packets float64 `json:"packets"`
	} `json:"outbound"`
}

// TestWebRTCBrowser: headless Debian Chromium loads a test page from a local HTTP server, its
// fake microphone plays a 1 kHz WAV, it offers to rtpbridge through the test (DevTools protocol)
// and talks to a PCMU RTP phone. The phone hears the browser's tone at 1 kHz, and the page's
// getStats() shows inbound-rtp packets with audio energy from the phone's tone.
func TestWebRTCBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (make test-tools installs it)")
	}
	dir := t.TempDir()
	wav := filepath.Join(dir, "tone.wav")
	writeWAV(t, wav, audiotest.Tone(48000, 10*48000, wrtcAmp, wrtcTone), 48000)
	page := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	defer page.Close()

	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	phone, _ := pcmuLeg(t, c)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(page.URL+"/webrtc_page.html")); err != nil {
		t.Fatalf("load the test page: %v", err)
	}
	offer, err := chromedp.Run(ctx, chromedp.Evaluate[string](`offer()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser offer: %v", err)
	}
	var res endpointResult
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": offer}, &res)
	quoted, _ := json.Marshal(res.SDPAnswer)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`answer(`+string(quoted)+`)`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("browser took no answer: %v\n%s", err, res.SDPAnswer)
	}
	waitState(t, c, res.EndpointID, "connecting", "connected")
	testserver.Eventually(t, 10*time.Second, "the page's connectionState connected", func() bool {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[string](`state()`))
		return err == nil && st == "connected"
	})

	// Browser → phone: Chromium's Opus, transcoded to PCMU.
	phone.Drain()
	got := collectQuiet(phone, 150, time.Second, 15*time.Second)
	pcm := pcmuFromPeer(got)
	steady := steadyWindow(pcm, 8000)
	if steady == nil {
		t.Fatalf("the phone got %d packets from the browser", len(got))
	}
	f := audiotest.DominantFrequency(steady, 8000)
	snr, _ := audiotest.SNR(steady, 8000, wrtcTone)
	t.Logf("browser → phone: %.1f Hz, SNR %.1f dB over %d ms", f, snr, len(steady)/8)
	if f < wrtcTone*0.99 || f > wrtcTone*1.01 {
		t.Errorf("the phone hears %.1f Hz, want %.0f Hz ± 1 %%", f, wrtcTone)
	}
	if snr < wrtcSNR {
		t.Errorf("browser → phone SNR %.1f dB, want ≥ %.0f dB", snr, wrtcSNR)
	}

	// Browser DTMF (RTCDTMFSender, D13): telephone-event reaches the phone on its own PT 101.
	phone.Drain()
	if r, err := chromedp.Run(ctx, chromedp.Evaluate[string](`dtmf("5")`)); err != nil || r != "ok" {
		t.Fatalf("browser DTMF: %q, %v", r, err)
	}
	var events []rtppeer.Packet
	for _, p := range collectQuiet(phone, 400, 1500*time.Millisecond, 5*time.Second) {
		if p.Header.PayloadType == 101 {
			events = append(events, p)
		}
	}
	if len(events) == 0 || events[0].Payload[0] != 5 {
		t.Errorf("the phone got %d telephone-event packets for the browser's DTMF 5", len(events))
	} else {
		last := events[len(events)-1].Payload
		t.Logf("browser DTMF 5: %d telephone-event packets at the phone, final duration %d ticks (8 kHz)", len(events), int(last[2])<<8|int(last[3]))
	}

	// Phone → browser: a 1 kHz PCMU tone, transcoded to Opus; the page's getStats() sees it.
	payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 4*8000, wrtcAmp, wrtcTone))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendPaced(phone, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, payloads)
	}()
	var last pageStats
	testserver.Eventually(t, 15*time.Second, "inbound-rtp packets with audio energy in the page's getStats()", func() bool {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`stats()`, chromedp.EvalAwaitPromise))
		if err != nil || json.Unmarshal([]byte(raw), &last) != nil || last.Inbound == nil {
			return false
		}
		return last.Inbound.Packets >= 100 && last.Inbound.Energy > 0.01
	})
	<-done
	// audioLevel is the received level relative to full scale: the phone's tone is sent at wrtcAmp.
	if lv := last.Inbound.Level; lv < wrtcAmp/2 || lv > wrtcAmp*1.5 {
		t.Errorf("page audioLevel %.3f, want about %.3f (the phone's tone)", lv, wrtcAmp)
	}
	t.Logf("page getStats(): inbound %d packets, totalAudioEnergy %.3f, audioLevel %.3f; outbound %d packets",
		int(last.Inbound.Packets), last.Inbound.Energy, last.Inbound.Level, int(last.Outbound.Packets))
}

package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// recordedPacket is one packet of a recorded PCAP as gopacket decodes it.
type recordedPacket struct {
	at       time.Time
	src, dst string
	rtp      rtp.Packet
	raw      []byte // the UDP payload
	rtcp     bool
}

// readPCAP decodes every RTP packet of a recording, or with wantRTCP every RTCP packet.
func readPCAP(t *testing.T, path string, wantRTCP bool) []recordedPacket {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil // the writer has not flushed the file header yet: nothing recorded so far
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []recordedPacket
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || udp == nil {
			t.Fatalf("%s: packet %d is not IPv4/UDP", path, len(out))
		}
		rp := recordedPacket{at: ci.Timestamp, src: ip.SrcIP.String(), dst: ip.DstIP.String(), raw: append([]byte(nil), udp.Payload...)}
		if len(rp.raw) >= 2 && rp.raw[1] >= 200 && rp.raw[1] <= 206 {
			rp.rtcp = true // RTCP (RFC 5761 §4: packet types 200–206)
		} else if err := rp.rtp.Unmarshal(rp.raw); err != nil {
			t.Fatalf("%s: packet %d: %v", path, len(out), err)
		}
		if rp.rtcp == wantRTCP {
			out = append(out, rp)
		}
	}
}

// waitRecorded waits until the recording at path holds n packets (its writer finishes in the
// background after recording.stop).
func waitRecorded(t *testing.T, path string, n int) []recordedPacket {
	t.Helper()
	var got []recordedPacket
	testserver.Eventually(t, 10*time.Second, "recording "+filepath.Base(path)+" complete", func() bool {
		got = readPCAP(t, path, false)
		return len(got) == n
	})
	return got
}

// tsharkRTP lists the RTP packets tshark finds in a recording: "src dst ssrc seq pt" per line.
func tsharkRTP(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-n", "-d", "udp.port==10000,rtp", "-Y", "rtp",
		"-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.p_type").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type stopResult struct {
	FilePath       string `json:"file_path"`
	DurationMS     int64  `json:"duration_ms"`
	Packets        uint64 `json:"packets"`
	DroppedPackets uint64 `json:"dropped_packets"`
	RecordingID    string `json:"recording_id"`
	Reason         string `json:"reason"`
}

func startRecording(t *testing.T, c *testserver.Client, params map[string]any) string {
	t.Helper()
	var res struct {
		RecordingID string `json:"recording_id"`
	}
	c.MustCall("recording.start", params, &res)
	if res.RecordingID == "" {
		t.Fatal("no recording_id")
	}
	return res.RecordingID
}

func stopRecording(t *testing.T, c *testserver.Client, id string) stopResult {
	t.Helper()
	var res stopResult
	c.MustCall("recording.stop", map[string]any{"recording_id": id}, &res)
	return res
}

// TestRecordingPCAPCall records a call between a plain RTP leg and an SDES-SRTP leg, once as a
// whole session and once as one leg: the files hold the decrypted RTP of each leg with the
// §17 addresses, as gopacket and tshark read them.
func TestRecordingPCAPCall(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is missing (make test-tools installs it)")
	}
	srv := testserver.Start(t, nil, server.Tuning{})
	dir := srv.Config.RecordingDir
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000", "101 telephone-event/8000")
	suite := srtpSuiteNamed(t, "AES_CM_128_HMAC_SHA1_80")
	bID, _, b := srtpLegFromOffer(t, c, suite, "RTP/SAVP", "RTP/SAVP")

	sessRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "session.pcap")})
	legRec := startRecording(t, c, map[string]any{"endpoint_id": a.id, "file_path": filepath.Join(dir, "leg-a.pcap")})
	bRec := startRecording(t, c, map[string]any{"endpoint_id": bID, "file_path": filepath.Join(dir, "leg-b.pcap")})
	var info struct {
		Recordings []struct {
			RecordingID string  `json:"recording_id"`
			EndpointID  *string `json:"endpoint_id"`
			FilePath    string  `json:"file_path"`
			State       string  `json:"state"`
		} `json:"recordings"`
	}
	c.MustCall("session.info", nil, &info)
	if len(info.Recordings) != 3 || info.Recordings[0].RecordingID != sessRec || info.Recordings[0].EndpointID != nil ||
		info.Recordings[1].EndpointID == nil || *info.Recordings[1].EndpointID != a.id || info.Recordings[2].State != "active" ||
		info.Recordings[0].FilePath != filepath.Join(dir, "session.pcap") {
		t.Fatalf("session.info recordings: %+v", info.Recordings)
	}
	if v := srv.MetricValue(t, "rtpbridge_recordings_active"); v != 3 {
		t.Fatalf("rtpbridge_recordings_active = %v", v)
	}

	const n = 40
	payloads := srtpPatterns(n)
	// A speaks first, so it is 10.1.0.1; B (SRTP) is 10.1.0.2.
	a.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 100, Timestamp: 8000, SSRC: 0xaaaa}, n, 160, true, func(i int) []byte { return payloads[i] })
	a.peer.Send(rtp.Header{PayloadType: 101, SequenceNumber: 100 + n, Timestamp: 8000 + 160*n, SSRC: 0xaaaa, Marker: true}, []byte{5, 10, 0, 160})
	b.collect(n, wait) // routed to B: A's packets were all handled
	b.stream(rtp.Header{PayloadType: 0, SequenceNumber: 5000, Timestamp: 1, SSRC: 0xbbbb}, n, func(i int) []byte { return payloads[n-1-i] })
	a.peer.Collect(n, wait)

	// packets_recorded counts each packet once however many recordings take it.
	testserver.Eventually(t, 5*time.Second, "packets recorded", func() bool {
		return srv.MetricValue(t, "rtpbridge_packets_recorded_total") == 2*n+1
	})
	sess := stopRecording(t, c, sessRec)
	leg := stopRecording(t, c, legRec)
	legB := stopRecording(t, c, bRec)
	if sess.Packets != 2*n+1 || sess.DroppedPackets != 0 || leg.Packets != n+1 || legB.Packets != n ||
		sess.FilePath != filepath.Join(dir, "session.pcap") || sess.DurationMS <= 0 {
		t.Fatalf("stop results: session %+v, leg A %+v, leg B %+v", sess, leg, legB)
	}
	if v := srv.MetricValue(t, "rtpbridge_recordings_active"); v != 0 {
		t.Fatalf("rtpbridge_recordings_active = %v after stop", v)
	}
	c.ExpectError("recording.stop", map[string]any{"recording_id": sessRec}, protocol.CodeRecordingError)

	got := waitRecorded(t, filepath.Join(dir, "session.pcap"), 2*n+1)
	for i, p := range got {
		switch {
		case i < n:
			if p.src != "10.1.0.1" || p.dst != "10.255.0.1" || p.rtp.SSRC != 0xaaaa || p.rtp.SequenceNumber != uint16(100+i) ||
				p.rtp.PayloadType != 0 || !bytes.Equal(p.rtp.Payload, payloads[i]) || len(p.raw) != 12+160 {
				t.Fatalf("packet %d: %s→%s %+v", i, p.src, p.dst, p.rtp.Header)
			}
		case i == n:
			if p.src != "10.1.0.1" || p.rtp.PayloadType != 101 || !p.rtp.Marker || !bytes.Equal(p.rtp.Payload, []byte{5, 10, 0, 160}) {
				t.Fatalf("telephone-event packet: %s %+v", p.src, p.rtp.Header)
			}
		default:
			j := i - n - 1
			// The SRTP leg's media appears decrypted, with its own sequence numbers.
			if p.src != "10.1.0.2" || p.dst != "10.255.0.1" || p.rtp.SSRC != 0xbbbb || p.rtp.SequenceNumber != uint16(5000+j) ||
				!bytes.Equal(p.rtp.Payload, payloads[n-1-j]) {
				t.Fatalf("SRTP packet %d: %s→%s %+v", j, p.src, p.dst, p.rtp.Header)
			}
		}
		if i > 0 && p.at.Before(got[i-1].at) {
			t.Fatalf("packet %d captured before packet %d", i, i-1)
		}
	}
	lines := tsharkRTP(t, filepath.Join(dir, "session.pcap"))
	if len(lines) != 2*n+1 || lines[0] != "10.1.0.1\t10.255.0.1\t0x0000aaaa\t100\t0" ||
		lines[n+1] != "10.1.0.2\t10.255.0.1\t0x0000bbbb\t5000\t0" {
		t.Fatalf("tshark on the session recording: %d lines, first %q, SRTP first %q", len(lines), lines[0], lines[min(n+1, len(lines)-1)])
	}
	// The leg recordings hold only their leg.
	waitRecorded(t, filepath.Join(dir, "leg-a.pcap"), n+1)
	for _, l := range tsharkRTP(t, filepath.Join(dir, "leg-a.pcap")) {
		if !strings.HasPrefix(l, "10.1.0.1\t10.255.0.1\t0x0000aaaa\t") {
			t.Fatalf("leg A recording holds %q", l)
		}
	}
	for _, l := range tsharkRTP(t, waitPath(t, filepath.Join(dir, "leg-b.pcap"), n)) {
		if !strings.HasPrefix(l, "10.1.0.2\t10.255.0.1\t0x0000bbbb\t") {
			t.Fatalf("leg B recording holds %q", l)
		}
	}
	// And GET /recordings serves them.
	status, body := srv.Get(t, "/recordings")
	if status != 200 || !strings.Contains(string(body), `"leg-a.pcap"`) || !strings.Contains(string(body), `"session.pcap"`) {
		t.Fatalf("listing: %d %s", status, body)
	}
	status, body = srv.Get(t, "/recordings/session.pcap")
	if disk, _ := os.ReadFile(filepath.Join(dir, "session.pcap")); status != 200 || !bytes.Equal(body, disk) {
		t.Fatalf("download: %d, %d bytes", status, len(body))
	}
}

func waitPath(t *testing.T, path string, n int) string {
	t.Helper()
	waitRecorded(t, path, n)
	return path
}

func TestRecordingStartErrors(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxRecordingsPerSession = 2 }, server.Tuning{})
	dir := srv.Config.RecordingDir
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exists.pcap"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testserver.Dial(t, srv)
	c.ExpectError("recording.start", map[string]any{"file_path": filepath.Join(dir, "x.pcap")}, protocol.CodeNoSession)
	c.CreateSession()
	for _, p := range []map[string]any{
		{},
		{"file_path": "relative.pcap"},
		{"file_path": dir + "/sub/../x.pcap"},
		{"file_path": filepath.Join(outside, "x.pcap")},
		{"file_path": filepath.Join(dir, "out", "x.pcap")},
		{"file_path": filepath.Join(dir, "missing", "x.pcap")},
		{"file_path": filepath.Join(dir, "x.pcap"), "endpoint_id": "not-a-uuid"},
		{"file_path": filepath.Join(dir, "x.wav"), "format": "mp3"},
		{"file_path": filepath.Join(dir, "x.wav"), "format": "wav", "layout": "surround"},
		{"file_path": filepath.Join(dir, "x.wav"), "format": "wav", "sample_rate": 44100},
	} {
		c.ExpectError("recording.start", p, protocol.CodeInvalidParams)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatal("a recording was created outside recording_dir")
	}
	e := c.ExpectError("recording.start", map[string]any{"file_path": filepath.Join(dir, "x.pcap"), "endpoint_id": "4b9f5e1c-3f5e-4d1a-9c55-6c1f0d2e8a11"}, protocol.CodeRecordingError)
	if e.Message != "Endpoint not found" {
		t.Fatalf("unknown endpoint: %q", e.Message)
	}
	c.ExpectError("recording.start", map[string]any{"file_path": filepath.Join(dir, "exists.pcap")}, protocol.CodeRecordingError)
	startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "one.pcap")})
	two := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "sub", "two.pcap"), "endpoint_id": nil})
	e = c.ExpectError("recording.start", map[string]any{"file_path": filepath.Join(dir, "three.pcap")}, protocol.CodeRecordingError)
	if e.Message != "Maximum concurrent recordings (2) reached" {
		t.Fatalf("limit: %q", e.Message)
	}
	stopRecording(t, c, two)
	startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "three.pcap")})
	e = c.ExpectError("recording.stop", map[string]any{"recording_id": "4b9f5e1c-3f5e-4d1a-9c55-6c1f0d2e8a11"}, protocol.CodeRecordingError)
	if e.Message != "Recording not found" {
		t.Fatalf("unknown recording: %q", e.Message)
	}
	c.ExpectError("recording.stop", map[string]any{}, protocol.CodeInvalidParams)
}

// TestRecordingStoppedEvents: removing a recorded endpoint and destroying the session stop their
// recordings with recording.stopped and the matching reason; a full disk with write_error.
func TestRecordingStoppedEvents(t *testing.T) {
	full := false
	srv := testserver.Start(t, nil, server.Tuning{RecordingFile: func(f *os.File) *os.File {
		if !full {
			return f
		}
		f.Close()
		dev, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return f
		}
		return dev
	}})
	dir := srv.Config.RecordingDir
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	legRec := startRecording(t, c, map[string]any{"endpoint_id": a.id, "file_path": filepath.Join(dir, "a.pcap")})
	sessRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "s.pcap")})
	a.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 1}, 10, 160, true, func(i int) []byte { return make([]byte, 160) })
	b.peer.Collect(10, wait)

	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": a.id}, nil)
	ev := c.WaitEvent(protocol.EventRecordingStopped, wait)
	var st stopResult
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.RecordingID != legRec || st.Reason != "endpoint_removed" || st.Packets != 10 || st.FilePath != filepath.Join(dir, "a.pcap") {
		t.Fatalf("recording.stopped after endpoint.remove: %s", ev.Data)
	}
	c.MustCall("session.destroy", nil, nil)
	ev = c.WaitEvent(protocol.EventRecordingStopped, wait)
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.RecordingID != sessRec || st.Reason != "session_destroyed" || st.Packets != 10 {
		t.Fatalf("recording.stopped after session.destroy: %s", ev.Data)
	}
	waitRecorded(t, filepath.Join(dir, "s.pcap"), 10)

	// A full disk: the writer's first flush fails, the recording stops with write_error and
	// the call goes on.
	full = true
	c.CreateSession()
	a = legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b = legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	fullRec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "full.pcap")})
	a.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 2}, 100, 160, false, func(i int) []byte { return make([]byte, 160) })
	if got := b.peer.Collect(100, wait); len(got) != 100 {
		t.Fatalf("media with a full disk: %d of 100 packets", len(got))
	}
	ev = c.WaitEvent(protocol.EventRecordingStopped, wait)
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.RecordingID != fullRec || st.Reason != "write_error" {
		t.Fatalf("recording.stopped on a full disk: %s", ev.Data)
	}
	c.ExpectError("recording.stop", map[string]any{"recording_id": fullRec}, protocol.CodeRecordingError)
}

// TestRecordingSlowDiskDropsOnlyRecording: the recording's writer is stuck on a pipe nobody
// reads. The call's media loses nothing; the recording drops what its queue cannot hold, and
// packets + dropped_packets is exactly what was captured.
func TestRecordingSlowDiskDropsOnlyRecording(t *testing.T) {
	var reader *os.File
	srv := testserver.Start(t, func(c *config.Config) {
		c.RecordingChannelSize = 20
		c.RecordingFlushTimeoutSecs = 1
	}, server.Tuning{RecordingFile: func(f *os.File) *os.File {
		f.Close()
		r, w, err := os.Pipe()
		if err != nil {
			t.Error(err)
			return f
		}
		// The smallest pipe the kernel allows (one page): the writer blocks at once.
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), 1031 /* F_SETPIPE_SZ */, 4096); errno != 0 {
			t.Errorf("F_SETPIPE_SZ: %v", errno)
		}
		reader = r
		return w
	}})
	t.Cleanup(func() {
		if reader != nil {
			reader.Close()
		}
	})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	id := startRecording(t, c, map[string]any{"file_path": filepath.Join(srv.Config.RecordingDir, "slow.pcap")})

	const n = 150 // 3 s of a call each way, paced
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 0xb}, n, 160, false, func(i int) []byte { return rtppeer.Pattern(i, 160) })
	}()
	a.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 0xa}, n, 160, false, func(i int) []byte { return rtppeer.Pattern(i, 160) })
	<-done
	gotB, gotA := b.peer.Collect(n, wait), a.peer.Collect(n, wait)
	if len(gotA) != n || len(gotB) != n {
		t.Fatalf("media lost packets with a stuck recording: A got %d/%d, B got %d/%d", len(gotA), n, len(gotB), n)
	}
	res := stopRecording(t, c, id)
	// Captured: the 2n media packets and the RTCP reports of the call's 3 s (§17), each
	// counted once by rtpbridge_packets_recorded_total whether queued or dropped.
	captured := int(srv.MetricValue(t, "rtpbridge_packets_recorded_total"))
	if captured < 2*n || captured > 2*n+6 || res.Packets+res.DroppedPackets != uint64(captured) {
		t.Fatalf("packets %d + dropped %d != %d captured (%d media packets and a few RTCP reports)", res.Packets, res.DroppedPackets, captured, 2*n)
	}
	if res.DroppedPackets == 0 {
		t.Fatalf("nothing dropped: the writer was not stuck (packets %d)", res.Packets)
	}
	t.Logf("stuck writer: %d packets queued, %d dropped, media 0 %% loss (%d+%d packets)", res.Packets, res.DroppedPackets, len(gotA), len(gotB))
	// The session goes on: another command is answered at once.
	start := time.Now()
	c.MustCall("session.info", nil, nil)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("session.info took %v with a stuck recording writer", d)
	}
}

// A PCAP recording holds the RTCP of plain RTP legs (§17): the compounds a leg receives, from
// its address to rtpbridge's, and the reports rtpbridge sends it, the other way.
func TestRecordingPCAPCapturesRTCP(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	dir := srv.Config.RecordingDir
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	// rtpbridge sends its first report at the first timer tick and then one every 5 s: wait
	// for the first, record, and wait for the next.
	waitReport := func() {
		t.Helper()
		select {
		case <-a.peer.RTCPIn:
		case <-time.After(8 * time.Second):
			t.Fatal("no RTCP report from rtpbridge")
		}
	}
	waitReport()
	rec := startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "rtcp.pcap")})
	a.peer.Send(rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 0xaaaa}, make([]byte, 160))
	rr := &rtcp.ReceiverReport{SSRC: 0xaaaa}
	a.peer.SendRTCP(rr)
	want, _ := rr.Marshal()
	waitReport()
	stopRecording(t, c, rec)
	var got []recordedPacket
	testserver.Eventually(t, 10*time.Second, "RTCP both ways in the recording", func() bool {
		got = readPCAP(t, filepath.Join(dir, "rtcp.pcap"), true)
		in, out := 0, 0
		for _, p := range got {
			if p.src == "10.1.0.1" && p.dst == "10.255.0.1" && bytes.Equal(p.raw, want) {
				in++
			}
			if p.src == "10.255.0.1" && p.dst == "10.1.0.1" && p.raw[1] == 200 {
				out++
			}
		}
		return in == 1 && out >= 1
	})
}

// When the server shuts down during a call, it waits for each recording's writer to drain and
// close its file (bounded by the flush timeout): here the disk (a pipe copied into the real
// file) stalls until released, and Close must not return before the writer is done.
func TestRecordingCompleteAfterShutdown(t *testing.T) {
	release := make(chan struct{})
	copied := make(chan error, 1)
	srv := testserver.Start(t, nil, server.Tuning{RecordingFile: func(f *os.File) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Error(err)
			return f
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), 1031 /* F_SETPIPE_SZ */, 4096); errno != 0 {
			t.Errorf("F_SETPIPE_SZ: %v", errno)
		}
		go func() {
			<-release
			_, err := io.Copy(f, r)
			r.Close()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			copied <- err
		}()
		return w
	}})
	dir := srv.Config.RecordingDir
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	startRecording(t, c, map[string]any{"file_path": filepath.Join(dir, "shutdown.pcap")})
	const n = 50 // about 11 KB of PCAP: more than the pipe holds
	a.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 0xaaaa}, n, 160, true, func(i int) []byte { return make([]byte, 160) })
	if got := b.peer.Collect(n, wait); len(got) != n {
		t.Fatalf("%d of %d packets routed", len(got), n)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("the server finished shutting down while a recording was still being written")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish once the disk was released")
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	if got := readPCAP(t, filepath.Join(dir, "shutdown.pcap"), false); len(got) != n {
		t.Fatalf("the recording holds %d of %d packets after shutdown", len(got), n)
	}
}

// A bridge half's frames are recorded as §17 says: PT 127 with sequence, timestamp and SSRC 0,
// and 20 ms of 48 kHz L16, little-endian as §12 has rtpbridge's internal L16, which here is the
// partner session's phone's 1 kHz tone.
func TestRecordingBridgeFramesL16(t *testing.T) {
	srv, ca, cb, sb, pa, _ := twoSessions(t, nil)
	var br bridgeResult
	ca.MustCall("session.bridge", map[string]any{"target_session_id": sb}, &br)
	path := filepath.Join(srv.Config.RecordingDir, "bridge.pcap")
	rec := startRecording(t, cb, map[string]any{"file_path": path})
	var wg sync.WaitGroup
	playTone(&wg, pa.peer, 0xa, pcmuToneAt(t, 1000, 50))
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	stopRecording(t, cb, rec)
	var l16 []int16
	testserver.Eventually(t, 10*time.Second, "bridge frames in the recording", func() bool {
		l16 = l16[:0]
		for _, p := range readPCAP(t, path, false) {
			if p.rtp.PayloadType != 127 {
				continue
			}
			if p.rtp.SequenceNumber != 0 || p.rtp.Timestamp != 0 || p.rtp.SSRC != 0 || len(p.rtp.Payload) != 1920 {
				t.Fatalf("bridge frame %+v with %d bytes", p.rtp.Header, len(p.rtp.Payload))
			}
			for i := 0; i < len(p.rtp.Payload); i += 2 {
				l16 = append(l16, int16(binary.LittleEndian.Uint16(p.rtp.Payload[i:])))
			}
		}
		return len(l16) >= 40*960
	})
	w := l16[len(l16)/4 : len(l16)*3/4]
	if f := audiotest.DominantFrequency(w, 48000); math.Abs(f-1000) > 5 {
		t.Fatalf("recorded bridge audio at %.1f Hz, want the partner's 1000 Hz tone", f)
	}
	if snr, err := audiotest.SNR(w, 48000, 1000); err != nil || snr < 30 {
		t.Fatalf("recorded bridge audio: SNR %.1f dB (%v)", snr, err)
	}
}

// A WebRTC leg's media is recorded decrypted (§17): the pion client's Opus packets (on the
// SSRC pion gives its track) decode to the tone it sent.
func TestRecordingWebRTCDecrypted(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	wp, _ := webrtcOfferLeg(t, c)
	path := filepath.Join(srv.Config.RecordingDir, "webrtc.pcap")
	rec := startRecording(t, c, map[string]any{"file_path": path})
	sendWebRTCTone(t, wp, "opus", 1)
	time.Sleep(200 * time.Millisecond)
	stopRecording(t, c, rec)
	var payloads [][]byte
	testserver.Eventually(t, 10*time.Second, "the client's packets in the recording", func() bool {
		payloads = payloads[:0]
		for _, p := range readPCAP(t, path, false) {
			if p.rtp.PayloadType == 111 && p.src == "10.1.0.1" && p.dst == "10.255.0.1" {
				payloads = append(payloads, p.rtp.Payload)
			}
		}
		return len(payloads) >= 45
	})
	pcm := audiotest.DecodePayloads(t, "opus", payloads)
	rate := audiotest.CodecSampleRate("opus")
	if f := audiotest.DominantFrequency(pcm[len(pcm)/4:], rate); math.Abs(f-wrtcTone) > 5 {
		t.Fatalf("recorded WebRTC audio at %.1f Hz, want %v", f, wrtcTone)
	}
}

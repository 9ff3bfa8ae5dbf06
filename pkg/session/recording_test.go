package session

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
)

// TestRecordingPCMLegAsPCMU: a PCM leg (a tone here, files alike) appears in a PCAP recording as
// PCMU (PT 0) packets of its audio on a continuous stream of its own (§17, D18).
func TestRecordingPCMLegAsPCMU(t *testing.T) {
	s := mediaTestSession(t)
	dir := t.TempDir()
	s.mgr.opts.Recording = RecordingOptions{Dir: recording.NewDir(dir), MaxPerSession: 10, QueueSize: 1000, FlushTimeout: 5 * time.Second}
	tone := newToneLeg(endpoint.SendOnly, 48000, 440)
	addPCMLeg(t, s, tone)
	var rec *recording.Recorder
	path := filepath.Join(dir, "tone.pcap")
	if _, err := s.Do("test.rec", func(s *Session) (any, error) {
		if _, err := s.recordingStart(&recordingStartParams{FilePath: &path, Format: "pcap", Layout: "mixed", SampleRate: 16000}); err != nil {
			return nil, err
		}
		rec = s.recs.active[0].rec
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := s.Do("test.stop", func(s *Session) (any, error) {
		s.dropRecording(s.recs.active[0], "", time.Now())
		if len(s.recs.pcm) != 0 {
			t.Error("the PCM capture outlived the last PCAP recording")
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	<-rec.Done()
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	var prev *rtp.Header
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		var p rtp.Packet
		if err := p.Unmarshal(udp.Payload); err != nil {
			t.Fatal(err)
		}
		if ip.SrcIP.String() != "10.1.0.1" || ip.DstIP.String() != "10.255.0.1" || p.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("packet %s→%s PT %d, %d bytes", ip.SrcIP, ip.DstIP, p.PayloadType, len(p.Payload))
		}
		if prev != nil && (p.SSRC != prev.SSRC || p.SequenceNumber != prev.SequenceNumber+1 || p.Timestamp != prev.Timestamp+160) {
			t.Fatalf("stream breaks: %+v after %+v", p.Header, *prev)
		}
		h := p.Header
		prev = &h
		pcm = append(pcm, audiotest.DecodeULaw(p.Payload)...)
	}
	if len(pcm) < 8000*3/4 {
		t.Fatalf("%d samples recorded in 1 s", len(pcm))
	}
	if f := audiotest.DominantFrequency(pcm[800:], 8000); math.Abs(f-440) > 3 {
		t.Fatalf("recorded tone at %.1f Hz", f)
	}
	if rec.Packets() != uint64(len(pcm)/160) || rec.Dropped() != 0 {
		t.Fatalf("packets %d dropped %d, file holds %d", rec.Packets(), rec.Dropped(), len(pcm)/160)
	}
}

package recording

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// FuzzDirOpen: whatever path a client puts in GET /recordings/{path}, Open yields a regular
// file inside recording_dir or an error.
func FuzzDirOpen(f *testing.F) {
	base := f.TempDir()
	rec := filepath.Join(base, "rec")
	for _, p := range []string{"rec/sub", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, p), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for _, p := range []string{"rec/a.pcap", "rec/sub/b.pcap", "outside/secret.pcap", "secret.pcap"} {
		if err := os.WriteFile(filepath.Join(base, p), []byte(p), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{"rec/out": "../outside", "rec/abs": filepath.Join(base, "secret.pcap"), "rec/in": "sub/b.pcap"} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{"a.pcap", "../secret.pcap", "out/secret.pcap", "abs", "in", "sub/../../outside/secret.pcap", "/etc/passwd", "", ".", "sub/"} {
		f.Add(s)
	}
	d := NewDir(rec)
	f.Fuzz(func(t *testing.T, name string) {
		file, err := d.Open(name)
		if err != nil {
			return
		}
		defer file.Close()
		b := make([]byte, 64)
		n, _ := file.Read(b)
		if !strings.HasPrefix(string(b[:n]), "rec/") {
			t.Fatalf("Open(%q) read %q: a file outside recording_dir", name, b[:n])
		}
	})
}

// FuzzConvertPCAP: pcap2wav on arbitrary bytes (a damaged or foreign file) returns an error or
// a file, never panics.
func FuzzConvertPCAP(f *testing.F) {
	var buf bytes.Buffer
	path := filepath.Join(f.TempDir(), "seed.pcap")
	file, err := os.Create(path)
	if err != nil {
		f.Fatal(err)
	}
	r, err := NewPCAP(file, Options{})
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Now()
	for i, pt := range []uint8{0, 8, 9, 111, 101, 127, 0} {
		payload := bytes.Repeat([]byte{byte(i * 37)}, 160)
		if pt == 101 {
			payload = payload[:4]
		}
		r.CaptureRTP(t0.Add(time.Duration(i)*20*time.Millisecond), EndpointAddr(i%3), BridgeAddr, &rtpnet.RTPHeader{PayloadType: pt, SequenceNumber: uint16(i)}, payload)
	}
	r.CaptureRaw(t0, BridgeAddr, EndpointAddr(0), []byte{0x80, 200, 0, 1, 0, 0, 0, 1})
	r.Stop()
	<-r.Done()
	seed, _ := os.ReadFile(path)
	buf.Write(seed)
	f.Add(buf.Bytes())
	f.Add(seed[:len(seed)-7])
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := os.CreateTemp(dir, "out-*.wav")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(out.Name())
		defer out.Close()
		_, _ = ConvertPCAP(bytes.NewReader(data), out, ConvertOptions{Container: "wav", Separate: true, Rate: 16000, MaxGap: 10 * time.Second})
	})
}

package playback

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// recorder is an endpoint.Sink standing in for the session loop: Post runs fn on the
// recorder's lock, the way the session runs it under its own.
type recorder struct {
	mu     sync.Mutex
	events []map[string]any
	names  []string
}

func (r *recorder) Packet(endpoint.Leg, []byte, netip.AddrPort, time.Time, bool) {}
func (r *recorder) Post(fn func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
	return true
}
func (r *recorder) Emit(event string, data any) {
	r.names = append(r.names, event)
	r.events = append(r.events, data.(map[string]any))
}
func (r *recorder) SetState(l endpoint.Leg, st endpoint.State) { l.SetState(st) }

// newService is a service over a fresh media_dir with a tone file in it.
func newService(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(Config{MediaDir: dir, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dir
}

// readAll plays f to its end as the session clock would (ReadFrame every "20 ms", here as
// fast as the worker fills), returning the audio; it fails after limit frames.
func readAll(t *testing.T, f *File, r *recorder, limit int) []int16 {
	t.Helper()
	var out []int16
	frame := make([]int16, endpoint.FrameSamples(f.Rate()))
	for i := 0; i < limit*50; i++ {
		r.mu.Lock()
		ok := f.ReadFrame(frame, time.Now())
		done := f.State() == endpoint.StateFinished || f.finished
		r.mu.Unlock()
		if ok {
			out = append(out, frame...)
		}
		if done {
			return out
		}
		if !ok {
			time.Sleep(time.Millisecond) // the worker is behind: a real clock would wait too
		}
	}
	t.Fatalf("no end after %d frames", limit)
	return nil
}

func TestFileLoopsAndGain(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	s, dir := newService(t)
	f0 := audiotest.FileFormat{Ext: ".wav", Rate: 16000, Channels: 1, Args: []string{"-c:a", "pcm_s16le", "-f", "wav"}}
	path := audiotest.WriteExprFile(t, dir, "chirp", f0, audiotest.ChirpExpr, time.Second)
	r := &recorder{}
	f, err := s.Open(uuid.New(), FileOptions{Source: path, Start: 250 * time.Millisecond, Loops: 2, GainDB: -6.0206})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(nil, r); err != nil {
		t.Fatal(err)
	}
	pcm := readAll(t, f, r, 1000)
	// Three plays of 750 ms each, every one from start_ms, at half the level; the last
	// 20 ms frame (320 samples) is half audio, half silence.
	if len(pcm) != 3*12000+160 {
		t.Fatalf("%d samples, want 3 × 750 ms = 36000 and 160 of padding", len(pcm))
	}
	for _, v := range pcm[36000:] {
		if v != 0 {
			t.Fatal("the last frame's padding is not silence")
		}
	}
	ref := audiotest.Chirp(16000, 12000, 250*time.Millisecond)
	for play := range 3 {
		got := pcm[play*12000 : (play+1)*12000]
		for i := 100; i < len(got); i += 997 {
			if d := int(got[i]) - int(ref[i])/2; d > 2 || d < -2 {
				t.Fatalf("play %d sample %d: %d, want %d (the chirp at start_ms, gain -6 dB)", play, i, got[i], ref[i]/2)
			}
		}
	}
	if len(r.names) != 1 || r.names[0] != "endpoint.file.finished" || r.events[0]["reason"] != "completed" {
		t.Errorf("events %v %v", r.names, r.events)
	}
	if v, ok := r.events[0]["error"]; !ok || v != nil {
		t.Errorf("completed event's error %v (present %v), want null (D3)", v, ok)
	}
	f.Close()
}

func TestFileSeekAndClose(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	s, dir := newService(t)
	f0 := audiotest.FileFormat{Ext: ".flac", Rate: 48000, Channels: 2, Args: []string{"-c:a", "flac", "-f", "flac"}}
	path := audiotest.WriteExprFile(t, dir, "chirp", f0, audiotest.ChirpExpr, 2*time.Second)
	r := &recorder{}
	f, err := s.Open(uuid.New(), FileOptions{Source: path})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Start(nil, r)
	frame := make([]int16, 960)
	r.mu.Lock()
	f.ReadFrame(frame, time.Now())
	if err := f.Seek(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.mu.Unlock()
	pcm := readAll(t, f, r, 1000)
	if len(pcm) != 24000 {
		t.Errorf("%d samples after seeking to 1.5 s of 2 s, want 24000", len(pcm))
	}
	lag, corr := audiotest.Delay(audiotest.Chirp(48000, 4800, 1500*time.Millisecond), pcm[:4800], 480)
	if math.Abs(lag) > 0.01 || corr < 0.99 {
		t.Errorf("after the seek: lag %.1f samples, correlation %.3f; want the chirp at 1.5 s", lag, corr)
	}
	if err := f.Seek(0); err == nil || !strings.Contains(err.Error(), "Cannot seek in state finished") {
		t.Errorf("seek when finished: %v", err)
	}
	// Close while a worker decodes: the worker frees the decoder.
	for range 20 {
		g, err := s.Open(uuid.New(), FileOptions{Source: path, Loops: -1})
		if err != nil {
			t.Fatal(err)
		}
		_ = g.Start(nil, r)
		r.mu.Lock()
		g.ReadFrame(frame, time.Now())
		g.ReadFrame(frame, time.Now())
		g.ReadFrame(frame, time.Now())
		g.ReadFrame(frame, time.Now())
		g.ReadFrame(frame, time.Now())
		r.mu.Unlock()
		g.Close()
	}
}

func TestFileReadFrameDoesNotAllocate(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	s, dir := newService(t)
	path := audiotest.WriteToneFile(t, dir, "tone", audiotest.FileFormats[0], 440, 0.5, 5*time.Second)
	f, err := s.Open(uuid.New(), FileOptions{Source: path, Loops: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	_ = f.Start(nil, r)
	defer f.Close()
	frame := make([]int16, endpoint.FrameSamples(f.Rate()))
	// Let the worker fill the ring, then hold it off (busy) so only ReadFrame is counted:
	// the decode on the worker allocates (go-astiav returns each EAGAIN as a new error value).
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	full := f.ring.count / f.frameLen
	f.busy = true
	f.mu.Unlock()
	if full < aheadFrames-1 {
		t.Fatalf("ring holds %d frames, want %d", full, aheadFrames)
	}
	if n := testing.AllocsPerRun(full-2, func() {
		if !f.ReadFrame(frame, time.Time{}) {
			t.Fatal("no frame")
		}
	}); n != 0 {
		t.Errorf("ReadFrame allocates %.1f times per frame", n)
	}
	f.mu.Lock()
	f.busy = false
	f.mu.Unlock()
	// Submitting a refill to the pool does not allocate either.
	p := newPool(1)
	defer p.close()
	job := func() {}
	p.submit(job)
	if n := testing.AllocsPerRun(100, func() { p.submit(job) }); n != 0 {
		t.Errorf("pool.submit allocates %.1f times", n)
	}
}

func TestResolveLocal(t *testing.T) {
	s, dir := newService(t)
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "a.wav"), []byte("x"), 0o600))
	must(os.WriteFile(filepath.Join(outside, "b.wav"), []byte("x"), 0o600))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	must(os.Symlink(filepath.Join(outside, "b.wav"), filepath.Join(dir, "out.wav")))
	must(os.Symlink(outside, filepath.Join(dir, "outdir")))
	must(os.Symlink(filepath.Join(dir, "a.wav"), filepath.Join(outside, "in.wav")))
	wd, _ := os.Getwd()
	rel, _ := filepath.Rel(wd, filepath.Join(dir, "a.wav"))
	for _, c := range []struct{ src, want string }{
		{filepath.Join(dir, "a.wav"), ""},
		{rel, ""},
		{filepath.Join(dir, "sub", "..", "a.wav"), ""},
		{filepath.Join(outside, "in.wav"), ""}, // a link from outside to a file inside
		{filepath.Join(outside, "b.wav"), "outside"},
		{filepath.Join(dir, "..", filepath.Base(outside), "b.wav"), "outside"},
		{filepath.Join(dir, "out.wav"), "outside"},
		{filepath.Join(dir, "outdir", "b.wav"), "outside"},
		{filepath.Join(outside, "nope.wav"), "outside"},
		{filepath.Join(dir, "nope.wav"), "File not found"},
		{filepath.Join(dir, "sub"), "not a regular file"},
		{dir, "not a regular file"},
	} {
		p, err := s.resolveLocal(c.src)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.src, err)
		case c.want == "" && p != filepath.Join(s.mediaRoot, "a.wav"):
			t.Errorf("%s resolved to %s", c.src, p)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.src, err, c.want)
		}
	}
	off, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if _, err := off.resolveLocal(filepath.Join(dir, "a.wav")); err != errLocalDisabled {
		t.Errorf("without media_dir: %v", err)
	}
}

// TestSharedStream: subscribers share frames; a late one joins at the head; the end
// finishes all; the decoder is freed when the last leaves; nothing keeps running.
func TestSharedStream(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	before := runtime.NumGoroutine()
	s, err := New(Config{MediaDir: t.TempDir(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	f0 := audiotest.FileFormat{Ext: ".wav", Rate: 8000, Channels: 1, Args: []string{"-c:a", "pcm_s16le", "-f", "wav"}}
	path := audiotest.WriteExprFile(t, s.cfg.MediaDir, "chirp", f0, audiotest.ChirpExpr, time.Second)
	r := &recorder{}
	open := func() *File {
		f, err := s.Open(uuid.New(), FileOptions{Source: path, Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Start(nil, r)
		return f
	}
	a := open()
	frame := make([]int16, 160)
	var gotA, gotB []int16
	read := func(f *File, into *[]int16) bool {
		for range 200 {
			r.mu.Lock()
			ok := f.ReadFrame(frame, time.Now())
			r.mu.Unlock()
			if ok {
				*into = append(*into, frame...)
				return true
			}
			if f.finished {
				return false
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("shared stream stalled")
		return false
	}
	for range 10 {
		read(a, &gotA)
	}
	b := open()
	if a.stream != b.stream {
		t.Fatal("two subscribers of one source got two streams")
	}
	for read(a, &gotA) {
		read(b, &gotB)
	}
	read(b, &gotB)
	if len(gotA) != 8000 {
		t.Errorf("first subscriber: %d samples, want the whole 8000", len(gotA))
	}
	if len(gotB) != 8000-1600 {
		t.Errorf("late subscriber: %d samples, want the 6400 after its join", len(gotB))
	}
	for i := range gotB {
		if gotB[i] != gotA[1600+i] {
			t.Fatalf("late subscriber's sample %d differs from the stream's", i)
		}
	}
	if !a.finished || !b.finished || a.State() != endpoint.StateFinished {
		t.Error("stream end did not finish both subscribers")
	}
	// A new subscriber after the end starts a new stream.
	c := open()
	if c.stream == a.stream {
		t.Error("joined a finished stream")
	}
	a.Close()
	b.Close()
	c.Close()
	s.sharedMu.Lock()
	n := len(s.shared)
	s.sharedMu.Unlock()
	if n != 0 {
		t.Errorf("%d shared streams left after every subscriber left", n)
	}
	s.Close()
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after Close, %d before", g, before)
	}
}

func TestGainExtremes(t *testing.T) {
	pcm := []int16{1000, -1000, 0, 32767, -32768}
	r := &reader{}
	r.setGain(1000)
	p := append([]int16(nil), pcm...)
	r.applyGain(p)
	if p[0] != 32767 || p[1] != -32768 || p[2] != 0 {
		t.Errorf("+1000 dB: %v, want clipped to full scale", p)
	}
	r.setGain(-1000)
	p = append([]int16(nil), pcm...)
	r.applyGain(p)
	for _, v := range p {
		if v != 0 {
			t.Errorf("-1000 dB: %v, want silence", p)
			break
		}
	}
	r.setGain(0)
	p = append([]int16(nil), pcm...)
	r.applyGain(p)
	if p[3] != 32767 || p[0] != 1000 {
		t.Errorf("0 dB changed samples: %v", p)
	}
}

// Subscribers of a shared stream whose sessions want another rate share one resampler: the
// stream keeps one track per rate, resampled once, with real anti-aliasing.
func TestSharedStreamAtSelectedRate(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	s, dir := newService(t)
	f16 := audiotest.FileFormat{Ext: ".wav", Rate: 16000, Channels: 1, Args: []string{"-c:a", "pcm_s16le", "-f", "wav"}}
	r := &recorder{}
	open := func(path string, shared bool) *File {
		f, err := s.Open(uuid.New(), FileOptions{Source: path, Shared: shared, Loops: -1})
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Start(nil, r)
		t.Cleanup(f.Close)
		return f
	}
	// read takes n frames from each file in turn, as sessions' clocks would.
	read := func(n int, files ...*File) [][]int16 {
		out := make([][]int16, len(files))
		frame := make([]int16, endpoint.FrameSamples(files[0].Rate()))
		for i := range files {
			out[i] = make([]int16, 0, n*len(frame))
		}
		// A file may stall (decode-ahead buffer empty) while another, read a moment later, does
		// not: each reads until it has n frames of its own.
		for tries := 0; tries < 100*n; tries++ {
			stalled, done := false, true
			for i, f := range files {
				if len(out[i]) >= n*len(frame) {
					continue
				}
				done = false
				r.mu.Lock()
				ok := f.ReadFrame(frame, time.Now())
				r.mu.Unlock()
				if ok {
					out[i] = append(out[i], frame...)
				} else {
					stalled = true
				}
			}
			if done {
				break
			}
			if stalled {
				time.Sleep(time.Millisecond)
			}
		}
		return out
	}

	tone := audiotest.WriteToneFile(t, dir, "tone1k", f16, 1000, 0.5, 4*time.Second)
	a, b := open(tone, true), open(tone, true)
	for _, f := range []*File{a, b} {
		if got := f.SelectRate(8000); got != 8000 || f.Rate() != 8000 || f.NativeRate() != 16000 {
			t.Fatalf("SelectRate(8000) = %d, Rate %d, NativeRate %d", got, f.Rate(), f.NativeRate())
		}
	}
	if a.track == nil || a.track != b.track || len(a.stream.tracks) != 1 {
		t.Fatalf("two subscribers at 8 kHz: tracks %p and %p, stream has %d", a.track, b.track, len(a.stream.tracks))
	}
	got := read(100, a, b)
	if len(got[0]) != len(got[1]) || len(got[0]) != 100*160 {
		t.Fatalf("read %d and %d samples, want 16000 each", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] {
			t.Fatalf("subscribers differ at sample %d", i)
		}
	}
	steady := got[0][800:]
	if f := audiotest.DominantFrequency(steady, 8000); math.Abs(f-1000) > 5 {
		t.Errorf("dominant frequency %.1f Hz at 8 kHz, want 1000", f)
	}
	if snr, err := audiotest.SNR(steady, 8000, 1000); err != nil || snr < 40 {
		t.Errorf("1 kHz through the 8 kHz track: SNR %.1f dB (%v), want ≥ 40", snr, err)
	}

	// A 6 kHz tone has no place at 8 kHz: a resampler filters it out, where dropping every
	// other sample would fold it down to 2 kHz at full level.
	high := audiotest.WriteToneFile(t, dir, "tone6k", f16, 6000, 0.5, 4*time.Second)
	h := open(high, true)
	if h.SelectRate(8000) != 8000 {
		t.Fatal("SelectRate(8000) refused")
	}
	out := read(100, h)[0][800:]
	var sum float64
	for _, v := range out {
		sum += float64(v) * float64(v)
	}
	if rms, full := math.Sqrt(sum/float64(len(out))), 0.5*32767/math.Sqrt2; 20*math.Log10(full/rms) < 40 {
		t.Errorf("6 kHz at 8 kHz: %.1f dB below the input, want ≥ 40 (aliasing)", 20*math.Log10(full/rms))
	}

	// Rates whose frames do not map onto the file's, and unshared files, stay at the file's
	// own rate (the session resamples them).
	if got := a.SelectRate(11025); got != 16000 || a.track != nil || a.Rate() != 16000 {
		t.Errorf("SelectRate(11025) = %d, Rate %d; want the native 16000", got, a.Rate())
	}
	u := open(tone, false)
	if got := u.SelectRate(8000); got != 16000 || u.Rate() != 16000 {
		t.Errorf("unshared SelectRate(8000) = %d, Rate %d; want 16000", got, u.Rate())
	}
}

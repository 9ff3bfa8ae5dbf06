package wsaudio

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

func newTestEndpoint(t testing.TB, rate, flushMs, bufferMs int) *Endpoint {
	t.Helper()
	hub := NewHub(Options{BufferMs: bufferMs}, nil)
	e, err := New(hub, uuid.New(), endpoint.SendRecv, rate, flushMs, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	e.SetState(endpoint.StateConnected)
	return e
}

func le(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// The playout buffer keeps the newest ws_audio_buffer_ms and counts what it drops; frames come
// out in order, and a partial frame waits one tick before it is padded and played.
func TestPlayoutBuffer(t *testing.T) {
	e := newTestEndpoint(t, 8000, 0, 100) // 800 samples
	in := make([]int16, 1000)
	for i := range in {
		in[i] = int16(i)
	}
	e.receive(le(in))
	if in, _ := e.Dropped(); in != 200 {
		t.Fatalf("dropped %d samples, want 200", in)
	}
	frame := make([]int16, 160)
	for k := 0; k < 5; k++ {
		if !e.ReadFrame(frame, time.Now()) {
			t.Fatalf("frame %d missing", k)
		}
		if frame[0] != int16(200+160*k) || frame[159] != int16(200+160*k+159) {
			t.Fatalf("frame %d starts %d ends %d", k, frame[0], frame[159])
		}
	}
	if e.ReadFrame(frame, time.Now()) {
		t.Fatal("frame from an empty buffer")
	}
	e.receive(le(in[:100]))
	if e.ReadFrame(frame, time.Now()) {
		t.Fatal("a partial frame played without waiting a tick")
	}
	if !e.ReadFrame(frame, time.Now()) || frame[99] != 99 || frame[100] != 0 || frame[159] != 0 {
		t.Fatalf("partial frame not padded: %v", frame[95:105])
	}
	// A message larger than the whole buffer keeps its newest part.
	big := make([]int16, 2000)
	for i := range big {
		big[i] = int16(i)
	}
	e.receive(le(big))
	if !e.ReadFrame(frame, time.Now()) || frame[0] != 1200 {
		t.Fatalf("oversized message: first sample %d, want 1200", frame[0])
	}
}

// Marks are answered when the audio before them has played; clear answers them at once.
func TestMarksAndClear(t *testing.T) {
	e := newTestEndpoint(t, 16000, 0, 1000)
	e.receive(le(make([]int16, 640)))
	e.control([]byte(`{"type":"mark","name":"a"}`))
	select {
	case m := <-e.text:
		t.Fatalf("mark answered early: %s", m)
	default:
	}
	frame := make([]int16, 320)
	e.ReadFrame(frame, time.Now())
	select {
	case m := <-e.text:
		t.Fatalf("mark answered after half its audio: %s", m)
	default:
	}
	e.ReadFrame(frame, time.Now())
	if m := <-e.text; string(m) != `{"type":"mark","name":"a"}` {
		t.Fatalf("mark reply %s", m)
	}
	e.receive(le(make([]int16, 1600)))
	e.control([]byte(`{"type":"mark","name":"b"}`))
	e.control([]byte(`{"type":"clear"}`))
	if m := <-e.text; string(m) != `{"type":"cleared","dropped_ms":100}` {
		t.Fatalf("clear reply %s", m)
	}
	if m := <-e.text; string(m) != `{"type":"mark","name":"b"}` {
		t.Fatalf("mark after clear %s", m)
	}
	if e.ReadFrame(frame, time.Now()) {
		t.Fatal("audio played after clear")
	}
}

// Outbound frames are coalesced into flush_ms messages; with no reader the queue fills and
// further messages are dropped and counted, never queued without bound.
func TestOutboundCoalesceAndDrop(t *testing.T) {
	e := newTestEndpoint(t, 8000, 60, 1000)
	frame := make([]int16, 160)
	for i := range frame {
		frame[i] = int16(i)
	}
	for k := 0; k < 3; k++ {
		e.WriteFrame(frame, time.Now())
	}
	m := <-e.out
	if len(m.b) != 3*320 || binary.LittleEndian.Uint16(m.b[2*161:]) != 1 {
		t.Fatalf("message of %d bytes", len(m.b))
	}
	e.free <- m
	depth := cap(e.out)
	for k := 0; k < 3*(depth+5); k++ {
		e.WriteFrame(frame, time.Now())
	}
	if _, out := e.Dropped(); out == 0 {
		t.Fatal("nothing dropped with the queue full")
	}
	if len(e.out) != depth {
		t.Fatalf("queue holds %d, want %d", len(e.out), depth)
	}
}

// The media path allocates nothing: ReadFrame, WriteFrame and the reader's push.
func TestNoAllocs(t *testing.T) {
	e := newTestEndpoint(t, 48000, 0, 1000)
	frame := make([]int16, 960)
	b := le(frame)
	allocs := testing.AllocsPerRun(200, func() {
		e.mu.Lock()
		e.push(b)
		e.mu.Unlock()
		e.ReadFrame(frame, time.Time{})
		e.WriteFrame(frame, time.Time{})
		select {
		case m := <-e.out:
			e.free <- m
		default:
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

// FuzzControl: any text a peer sends is a request or ignored, never a panic or a stuck buffer.
func FuzzControl(f *testing.F) {
	for _, s := range []string{`{"type":"clear"}`, `{"type":"mark","name":"x"}`, `{"type":"mark"}`, `{"type":1}`, `[]`, `{`, ``} {
		f.Add([]byte(s), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, text, audio []byte) {
		e := newTestEndpoint(t, 8000, 0, 100)
		e.receive(audio[:len(audio)&^1])
		e.control(text)
		frame := make([]int16, 160)
		for misses := 0; misses < 2; { // a partial frame plays on the second tick
			if e.ReadFrame(frame, time.Time{}) {
				misses = 0
			} else {
				misses++
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.n != 0 || e.played != e.received || len(e.marks) != 0 {
			t.Fatalf("n %d played %d received %d marks %d", e.n, e.played, e.received, len(e.marks))
		}
	})
}

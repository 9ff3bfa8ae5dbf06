package session

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

func testManager(opts Options) *Manager {
	return NewManager(opts, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
}

func code(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	return ""
}

// A command that reaches a session that has ended, or that is waiting when it ends, is
// SESSION_GONE; callers never hang.
func TestCommandsToEndedSessionAreGone(t *testing.T) {
	release := make(chan struct{})
	m := testManager(Options{CommandTimeout: 2 * time.Second, BeforeCommand: func(method string) {
		if method == "stall" {
			<-release
		}
	}})
	defer m.Close()
	s, err := m.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Queue: a stalled command, then destroy, then a command that will find the session gone.
	go func() { _, _ = s.Do("stall", func(*Session) (any, error) { return nil, nil }) }()
	time.Sleep(50 * time.Millisecond)
	destroyed := make(chan error, 1)
	go func() { destroyed <- s.Destroy() }()
	time.Sleep(50 * time.Millisecond)
	gone := make(chan error, 1)
	go func() { _, err := s.Do("late", func(*Session) (any, error) { return "ran", nil }); gone <- err }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-destroyed; err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if err := <-gone; code(err) != protocol.CodeSessionGone {
		t.Fatalf("command behind destroy: %v, want SESSION_GONE", err)
	}
	if _, err := s.Do("after", func(*Session) (any, error) { return nil, nil }); code(err) != protocol.CodeSessionGone {
		t.Fatalf("command after end: %v", err)
	}
	if err := s.Destroy(); code(err) != protocol.CodeSessionNotFound {
		t.Fatalf("second destroy: %v, want SESSION_NOT_FOUND", err)
	}
	if m.Count() != 0 {
		t.Fatalf("%d sessions left", m.Count())
	}
}

// A command whose caller timed out is never applied afterwards.
func TestAbandonedCommandIsNotRun(t *testing.T) {
	release := make(chan struct{})
	m := testManager(Options{CommandTimeout: 100 * time.Millisecond, BeforeCommand: func(method string) {
		if method == "stall" {
			<-release
		}
	}})
	defer m.Close()
	s, _ := m.Create(nil)
	go func() { _, _ = s.Do("stall", func(*Session) (any, error) { return nil, nil }) }()
	time.Sleep(20 * time.Millisecond)
	var ran atomic.Bool
	if _, err := s.Do("late", func(*Session) (any, error) { ran.Store(true); return nil, nil }); code(err) != protocol.CodeSessionUnresponsive {
		t.Fatalf("got %v, want SESSION_UNRESPONSIVE", err)
	}
	close(release)
	if _, err := s.Do("probe", func(*Session) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Fatal("abandoned command ran")
	}
}

func TestFormatTime(t *testing.T) {
	cases := map[time.Time]string{
		time.Date(2025, 3, 25, 10, 30, 0, 0, time.UTC):                  "2025-03-25T10:30:00Z",
		time.Date(2025, 3, 25, 10, 30, 0, 512900000, time.UTC):          "2025-03-25T10:30:00.5129Z",
		time.Date(2025, 3, 25, 11, 30, 0, 1, time.FixedZone("x", 3600)): "2025-03-25T10:30:00.000000001Z",
	}
	for in, want := range cases {
		if got := FormatTime(in); got != want {
			t.Errorf("FormatTime(%v) = %s, want %s", in, got, want)
		}
	}
}

// A panic on the session loop ends that session cleanly; the manager and other sessions go on.
func TestPanicEndsOnlyThatSession(t *testing.T) {
	m := testManager(Options{})
	defer m.Close()
	bad, _ := m.Create(nil)
	good, _ := m.Create(nil)
	bad.media.events <- mediaEvent{fn: func(*Session) { panic("boom") }}
	select {
	case <-bad.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end after a panic")
	}
	if _, err := good.Do("probe", func(*Session) (any, error) { return nil, nil }); err != nil {
		t.Fatalf("other session: %v", err)
	}
	if m.Count() != 1 {
		t.Fatalf("%d sessions, want 1", m.Count())
	}
}

package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/playback"
	"github.com/rtpbridge/rtpbridge/pkg/tone"
)

// lookupPlaybackMethod resolves the methods of file playback and tone endpoints (PROTOCOL.md §6, §18, §19).
func lookupPlaybackMethod(name string) (Method, bool) {
	switch name {
	case "endpoint.create_with_file":
		return newMethod(name, (*Session).createWithFile), true
	case "endpoint.file.seek":
		return newMethod(name, (*Session).fileSeek), true
	case "endpoint.file.pause":
		return newMethod(name, (*Session).filePause), true
	case "endpoint.file.resume":
		return newMethod(name, (*Session).fileResume), true
	case "endpoint.create_tone":
		return newMethod(name, (*Session).createTone), true
	}
	return Method{}, false
}

// loopCount is loop_count: absent means 0, null means forever (§6).
type loopCount struct {
	forever bool
	n       uint32
}

func (l *loopCount) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		l.forever = true
		return nil
	}
	if err := json.Unmarshal(b, &l.n); err != nil {
		return errors.New("invalid type for loop_count: expected an unsigned 32-bit integer or null")
	}
	return nil
}

type createWithFileParams struct {
	Source       *string           `json:"source"`
	StartMs      uint64            `json:"start_ms"`
	LoopCount    loopCount         `json:"loop_count"`
	CacheTTLSecs *uint32           `json:"cache_ttl_secs"`
	Shared       bool              `json:"shared"`
	TimeoutMs    *uint32           `json:"timeout_ms"`
	Headers      map[string]string `json:"headers"`
	GainDB       float32           `json:"gain_db"`

	// file is opened by prepare, off the session loop, and taken by the command; whoever
	// swaps it out owns it, so a command the caller gave up on never leaks it.
	file atomic.Pointer[playback.File]
}

// maxStartMs keeps start_ms × 1 ms inside a time.Duration.
const maxStartMs = math.MaxInt64 / int64(time.Millisecond)

func (p *createWithFileParams) validate() error {
	if p.Source == nil {
		return errors.New("missing field `source`")
	}
	if !p.LoopCount.forever && p.LoopCount.n > 10000 {
		return fmt.Errorf("loop_count %d is out of range (at most 10000, or null for forever)", p.LoopCount.n)
	}
	if p.TimeoutMs != nil && (*p.TimeoutMs < 1 || *p.TimeoutMs > 60000) {
		return fmt.Errorf("timeout_ms %d is out of range 1..=60000", *p.TimeoutMs)
	}
	if p.StartMs > uint64(maxStartMs) {
		return fmt.Errorf("start_ms %d is out of range", p.StartMs)
	}
	return nil
}

func (p *createWithFileParams) options() playback.FileOptions {
	o := playback.FileOptions{
		Source:   *p.Source,
		Start:    time.Duration(p.StartMs) * time.Millisecond,
		Loops:    int64(p.LoopCount.n),
		CacheTTL: 300 * time.Second,
		Shared:   p.Shared,
		Timeout:  10 * time.Second,
		Headers:  p.Headers,
		GainDB:   p.GainDB,
	}
	if p.LoopCount.forever {
		o.Loops = -1
	}
	if p.CacheTTLSecs != nil {
		o.CacheTTL = time.Duration(*p.CacheTTLSecs) * time.Second
	}
	if p.TimeoutMs != nil {
		o.Timeout = time.Duration(*p.TimeoutMs) * time.Millisecond
	}
	return o
}

// prepare opens the file (local sources: resolve, open, seek to start_ms, decode ahead) in
// the caller's goroutine, so a slow disk never holds up the session loop (see Session.Call).
func (p *createWithFileParams) prepare(s *Session) error {
	svc := s.mgr.opts.Playback
	if svc == nil {
		return endpointError("File playback is not available in this server")
	}
	var f *playback.File
	o := p.options()
	// The hook runs on the session loop, after f is set.
	o.Remove = func() {
		if l, ok := s.media.byEP[f]; ok {
			s.media.remove(l, time.Now())
		}
	}
	f, err := svc.Open(uuid.New(), o)
	if err != nil {
		return endpointError("%v", err)
	}
	p.file.Store(f)
	return nil
}

func (p *createWithFileParams) release() {
	if f := p.file.Swap(nil); f != nil {
		f.Close()
	}
}

func (s *Session) createWithFile(p *createWithFileParams) (any, error) {
	f := p.file.Swap(nil)
	if f == nil {
		return nil, endpointError("File endpoint was not prepared")
	}
	m := s.media
	if m.full() {
		f.Close()
		return nil, endpointError("MAX_ENDPOINTS_REACHED")
	}
	now := time.Now()
	if err := f.Start(m.worker, m); err != nil {
		f.Close()
		return nil, endpointError("%v", err)
	}
	m.add(f, now)
	return map[string]string{"endpoint_id": f.ID().String()}, nil
}

// fileLeg finds a file endpoint (`Endpoint not found`, `Not a file endpoint`).
func (m *mediaState) fileLeg(id uuid.UUID) (*leg, *playback.File, error) {
	l, err := m.leg(id)
	if err != nil {
		return nil, nil, err
	}
	f, ok := l.ep.(*playback.File)
	if !ok {
		return nil, nil, endpointError("Not a file endpoint")
	}
	return l, f, nil
}

type fileSeekParams struct {
	endpointRef
	PositionMs *uint64 `json:"position_ms"`
}

func (p *fileSeekParams) validate() error {
	if err := p.endpointRef.validate(); err != nil {
		return err
	}
	if p.PositionMs == nil {
		return errors.New("missing field `position_ms`")
	}
	if *p.PositionMs > uint64(maxStartMs) {
		return fmt.Errorf("position_ms %d is out of range", *p.PositionMs)
	}
	return nil
}

func (s *Session) fileSeek(p *fileSeekParams) (any, error) {
	_, f, err := s.media.fileLeg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	if err := f.Seek(time.Duration(*p.PositionMs) * time.Millisecond); err != nil {
		return nil, endpointError("%v", err)
	}
	return nil, nil
}

func (s *Session) filePause(p *endpointRef) (any, error) {
	l, f, err := s.media.fileLeg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	st, change, err := f.Pause()
	if err != nil {
		return nil, endpointError("%v", err)
	}
	if change {
		s.media.setState(l, st)
	}
	return nil, nil
}

func (s *Session) fileResume(p *endpointRef) (any, error) {
	l, f, err := s.media.fileLeg(*p.EndpointID)
	if err != nil {
		return nil, err
	}
	st, change, err := f.Resume()
	if err != nil {
		return nil, endpointError("%v", err)
	}
	if change {
		s.media.setState(l, st)
	}
	return nil, nil
}

type createToneParams struct {
	Tone       *string  `json:"tone"`
	Frequency  *float64 `json:"frequency"`
	DurationMs *uint64  `json:"duration_ms"`
	spec       tone.Spec
}

func (p *createToneParams) validate() error {
	if p.Tone == nil {
		return errors.New("missing field `tone`")
	}
	freq := 440.0
	if p.Frequency != nil {
		if f := *p.Frequency; !(f >= 20 && f <= 20000) {
			return fmt.Errorf("frequency %g is out of range 20..=20000 Hz", f)
		}
		freq = *p.Frequency
	}
	spec, err := tone.Lookup(*p.Tone, freq)
	if err != nil {
		return err
	}
	p.spec = spec
	return nil
}

func (s *Session) createTone(p *createToneParams) (any, error) {
	m := s.media
	if m.full() {
		return nil, endpointError("max endpoints reached")
	}
	dur := time.Duration(-1)
	if p.DurationMs != nil {
		dur = time.Duration(min(*p.DurationMs, uint64(maxStartMs))) * time.Millisecond
	}
	t := tone.New(uuid.New(), p.spec, dur)
	now := time.Now()
	if err := t.Start(m.worker, m); err != nil {
		return nil, endpointError("%v", err)
	}
	m.add(t, now)
	return map[string]string{"endpoint_id": t.ID().String(), "tone": *p.Tone}, nil
}

package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
)

// lookupRecordingMethod resolves the methods of recordings (PROTOCOL.md §7, §17, §33).
func lookupRecordingMethod(name string) (Method, bool) {
	switch name {
	case "recording.start":
		return newMethod(name, (*Session).recordingStart), true
	case "recording.stop":
		return newMethod(name, (*Session).recordingStop), true
	}
	return Method{}, false
}

func recordingError(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeRecordingError, format, args...)
}

type recordingStartParams struct {
	EndpointID *uuid.UUID `json:"endpoint_id"`
	FilePath   *string    `json:"file_path"`
	Format     string     `json:"format"`
	Layout     string     `json:"layout"`
	SampleRate int        `json:"sample_rate"`
}

func (p *recordingStartParams) validate() error {
	if p.FilePath == nil {
		return errors.New("missing field `file_path`")
	}
	switch p.Format {
	case "":
		p.Format = "pcap"
	case "pcap", "wav", "ogg":
	default:
		return fmt.Errorf("unknown format %q, expected pcap, wav or ogg", p.Format)
	}
	switch p.Layout {
	case "":
		p.Layout = "mixed"
	case "mixed", "separate":
	default:
		return fmt.Errorf("unknown layout %q, expected mixed or separate", p.Layout)
	}
	switch p.SampleRate {
	case 0:
		p.SampleRate = 16000
	case 8000, 16000, 48000:
	default:
		return fmt.Errorf("sample_rate must be 8000, 16000 or 48000, got %d", p.SampleRate)
	}
	return nil
}

// maxSeparateChannels is the most channels a `separate` recording has (§33).
const maxSeparateChannels = 8

func (s *Session) recordingStart(p *recordingStartParams) (any, error) {
	opts := &s.mgr.opts.Recording
	if opts.Dir == nil {
		return nil, recordingError("Recording is disabled (no recording_dir)")
	}
	var target *leg
	if p.EndpointID != nil {
		l, ok := s.media.byID[*p.EndpointID]
		if !ok {
			return nil, recordingError("Endpoint not found")
		}
		target = l
	}
	if opts.MaxPerSession > 0 && len(s.recs.active) >= opts.MaxPerSession {
		return nil, recordingError("Maximum concurrent recordings (%d) reached", opts.MaxPerSession)
	}
	f, path, err := opts.Dir.Create(*p.FilePath)
	if err != nil {
		if errors.Is(err, recording.ErrInvalidPath) {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "%v", err)
		}
		return nil, recordingError("%v", err)
	}
	if opts.WrapFile != nil {
		f = opts.WrapFile(f)
	}
	ropts := recording.Options{QueueSize: opts.QueueSize, FlushTimeout: opts.FlushTimeout, Log: s.mgr.log.With("session_id", s.id), Writers: &s.mgr.writers}
	r := &activeRecording{id: uuid.New(), leg: target, path: path}
	if p.Format == "pcap" {
		r.rec, err = recording.NewPCAP(f, ropts)
	} else {
		r.decoded = true
		r.taps = make(map[*leg]*recordingTap)
		channels := 1
		if p.Layout == "separate" && target == nil {
			// The file's channel count is fixed when it starts: one per endpoint present now
			// (at least two, at most eight); later parties share the last channel.
			channels = min(max(len(s.media.legs), 2), maxSeparateChannels)
		}
		r.rec, err = recording.NewDecoded(f, recording.DecodedFormat{
			Container: p.Format, Rate: p.SampleRate, Channels: channels,
		}, ropts)
	}
	if err != nil {
		_ = opts.Dir.RemoveCreated(path)
		return nil, recordingError("cannot start recording: %v", err)
	}
	s.addRecording(r)
	s.mgr.log.Info("recording started", "session_id", s.id, "recording_id", r.id, "file", path, "format", p.Format)
	return map[string]string{"recording_id": r.id.String()}, nil
}

type recordingRef struct {
	RecordingID *uuid.UUID `json:"recording_id"`
}

func (p *recordingRef) validate() error {
	if p.RecordingID == nil {
		return errors.New("missing field `recording_id`")
	}
	return nil
}

func (s *Session) recordingStop(p *recordingRef) (any, error) {
	for _, r := range s.recs.active {
		if r.id == *p.RecordingID {
			return s.dropRecording(r, "", time.Now()), nil
		}
	}
	return nil, recordingError("Recording not found")
}

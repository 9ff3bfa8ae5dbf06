package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// Method is a request that acts on the connection's bound session. Its parameters are decoded in
// the caller's goroutine, so bad input is rejected before it costs the session anything; the
// body runs on the session loop.
type Method struct {
	name   string
	decode func(raw json.RawMessage) (any, error)
	exec   func(s *Session, params any) (any, error)
}

// Name is the protocol method name.
func (m Method) Name() string { return m.name }

// Decode parses and validates the request's params. Errors are INVALID_PARAMS.
func (m Method) Decode(raw json.RawMessage) (any, error) { return m.decode(raw) }

// Call runs the method with decoded params on the session.
func (s *Session) Call(m Method, params any) (any, error) {
	if p, ok := params.(preparer); ok {
		// Work that must not run on the session loop (opening a file) runs here, in the
		// caller's goroutine; what the command did not take over is released after it.
		if err := p.prepare(s); err != nil {
			return nil, err
		}
		defer p.release()
	}
	return s.Do(m.name, func(s *Session) (any, error) { return m.exec(s, params) })
}

// preparer is implemented by params whose method does blocking work before it runs on the
// session loop (see playback_methods.go).
type preparer interface {
	prepare(s *Session) error
	release()
}

// validator is implemented by parameter structs with rules beyond JSON types.
type validator interface{ validate() error }

// newMethod builds a Method whose params decode into P.
func newMethod[P any](name string, exec func(s *Session, p *P) (any, error)) Method {
	return Method{
		name: name,
		decode: func(raw json.RawMessage) (any, error) {
			p := new(P)
			if err := DecodeParams(raw, p); err != nil {
				return nil, err
			}
			return p, nil
		},
		exec: func(s *Session, params any) (any, error) { return exec(s, params.(*P)) },
	}
}

// DecodeParams decodes a request's params into dst. Omitted or null params mean {} (D1); any
// other non-object is INVALID_PARAMS. Unknown keys are ignored (PROTOCOL.md §2.2).
func DecodeParams(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return protocol.Errorf(protocol.CodeInvalidParams, "params must be a JSON object")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return protocol.Errorf(protocol.CodeInvalidParams, "%s", decodeErrorText(err))
	}
	if v, ok := dst.(validator); ok {
		if err := v.validate(); err != nil {
			var perr *protocol.Error
			if errors.As(err, &perr) {
				return perr
			}
			return protocol.Errorf(protocol.CodeInvalidParams, "%s", err.Error())
		}
	}
	return nil
}

// decodeErrorText makes encoding/json's errors read like a client's problem, naming the field.
func decodeErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "params"
		}
		return fmt.Sprintf("invalid type for %s: expected %s, got JSON %s", field, te.Type, te.Value)
	}
	return err.Error()
}

// noParams is the params type of parameterless methods: whatever object is sent is ignored.
type noParams struct{}

// LookupMethod returns the session-bound method called name.
func LookupMethod(name string) (Method, bool) {
	switch name {
	case "session.info":
		return newMethod("session.info", func(s *Session, _ *noParams) (any, error) { return s.info(), nil }), true
	}
	return lookupMediaMethod(name)
}

// Info is the result of session.info and the body of GET /sessions/{id}.
type Info struct {
	SessionID  string `json:"session_id"`
	State      string `json:"state"`
	CreatedAt  string `json:"created_at"`
	Endpoints  []any  `json:"endpoints"`
	Recordings []any  `json:"recordings"`
	VADActive  []any  `json:"vad_active"`
	// FaxDetectActive lists the endpoints with fax tone detection on (PROTOCOL.md §31).
	FaxDetectActive []any `json:"fax_detect_active"`
}

func (s *Session) info() *Info {
	state := StateActive
	if s.sink == nil {
		state = StateOrphaned
	}
	return &Info{
		SessionID:  s.id.String(),
		State:      state,
		CreatedAt:  FormatTime(s.createdAt),
		Endpoints:  s.media.endpointInfos(),
		Recordings: s.recordingInfos(),
		VADActive:  []any{},

		FaxDetectActive: s.faxDetectActive(),
	}
}

// Info asks the session loop for its description (GET /sessions/{id}; counts as activity).
func (s *Session) Info() (*Info, error) {
	res, err := s.Do("session.info", func(s *Session) (any, error) { return s.info(), nil })
	if err != nil {
		return nil, err
	}
	return res.(*Info), nil
}

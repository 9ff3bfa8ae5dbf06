package webrtc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// unwrapAnswer accepts an answer as raw SDP or as the JSON a browser's RTCSessionDescription
// serialises to, {"type":"answer","sdp":"…"} (PROTOCOL.md §6), and returns the SDP.
func unwrapAnswer(raw []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return raw, nil
	}
	var desc struct {
		Type *string `json:"type"`
		SDP  *string `json:"sdp"`
	}
	if err := json.Unmarshal(trimmed, &desc); err != nil {
		return nil, fmt.Errorf("answer looks like JSON but does not parse: %w", err)
	}
	if desc.Type == nil || *desc.Type != "answer" {
		t := "none"
		if desc.Type != nil {
			t = fmt.Sprintf("%q", *desc.Type)
		}
		return nil, fmt.Errorf(`JSON session description has type %s, expected "answer"`, t)
	}
	if desc.SDP == nil || *desc.SDP == "" {
		return nil, errors.New("JSON session description has no sdp")
	}
	return []byte(*desc.SDP), nil
}

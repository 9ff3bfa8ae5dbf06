package control

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/session"
)

func TestTruncateUTF8(t *testing.T) {
	s := strings.Repeat("a", 1023) + "é" // é straddles byte 1024
	if got := truncateUTF8(s, 1024); got != strings.Repeat("a", 1023) {
		t.Errorf("cut inside a rune: %q", got[1020:])
	}
	if got := truncateUTF8("short", 1024); got != "short" {
		t.Errorf("got %q", got)
	}
}

func TestDecodeRequestKeysAreCaseSensitive(t *testing.T) {
	if _, bad := decodeRequest([]byte(`{"ID":"a","Method":"session.list"}`)); bad == nil || bad.Error.Code != protocol.CodeParseError {
		t.Fatalf("upper-case keys accepted: %+v", bad)
	}
}

// FuzzDecodeRequest feeds arbitrary frames to the envelope and params decoders: they must never
// panic, must always produce a well-formed answer, and must respect the id rules of §2.2.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","method":"session.create"}`,
		`{"id":"2","method":"session.attach","params":{"session_id":"6f1c0d2e-6b7a-4b55-9a57-2f2d6a1f0c11"}}`,
		`{"id":"3","method":"session.info","params":null}`,
		`{"id":"","method":"x"}`,
		`{"id":7}`,
		`[1,2,3]`,
		`{"id":"` + strings.Repeat("x", 1100) + `","method":"a"}`,
		`{"id":"4","method":"session.list","params":[1]}`,
		`{"id":"\u00e9","method":"session.attach","params":{"session_id":12}}`,
		`nul`, ``, `{}`, `{"id":"5","method":"session.attach","params":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, bad := decodeRequest(frame)
		if bad != nil {
			if bad.Error == nil || bad.Result != nil {
				t.Fatalf("malformed error response %+v", bad)
			}
			if len(bad.ID) > maxIDBytes {
				t.Fatalf("echoed id of %d bytes", len(bad.ID))
			}
			if _, err := json.Marshal(bad); err != nil {
				t.Fatalf("error response does not serialise: %v", err)
			}
			return
		}
		if len(req.ID) > maxIDBytes {
			t.Fatalf("accepted id of %d bytes", len(req.ID))
		}
		if m, ok := session.LookupMethod(req.Method); ok {
			_, _ = m.Decode(req.Params)
		}
		var p struct{}
		_ = session.DecodeParams(req.Params, &p)
	})
}

package control

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

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
		// Nesting over encoding/json's limit: the id is recovered by recoverID.
		`{"id":"6","method":"session.create","x":` + nested("[", "]", 10001) + `}`,
		`{"x":` + strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat(`}`, 10001) + `,"id":"7","id":"8"}`,
		`{"id":"9","x":` + nested("[", "]", 10001)[1:] + `}`,
		`{"\u0069d":"10","x":[[[{"y":[-0.5e+3,true,false,null,"\u00e9\n"]}]]]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkRecoverID(t, frame)
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

// nested is n opens followed by n closes.
func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// checkRecoverID compares recoverID with encoding/json: on every frame encoding/json accepts
// they must agree exactly, and recoverID may accept more only where encoding/json gave up on
// the nesting depth.
func checkRecoverID(t *testing.T, frame []byte) {
	t.Helper()
	id, idOK, valid := recoverID(frame)
	var fields map[string]json.RawMessage
	err := json.Unmarshal(frame, &fields)
	if json.Valid(frame) {
		isObject := err == nil && fields != nil
		if valid != isObject {
			t.Fatalf("recoverID valid=%v, encoding/json object=%v (%v)", valid, isObject, err)
		}
		if !isObject {
			return
		}
		var want string
		raw, has := fields["id"]
		wantOK := has && isJSONString(raw) && json.Unmarshal(raw, &want) == nil
		if idOK != wantOK || id != want {
			t.Fatalf("recoverID id=%q/%v, encoding/json id=%q/%v", id, idOK, want, wantOK)
		}
		return
	}
	var serr *json.SyntaxError
	if valid && !(errors.As(err, &serr) && strings.Contains(serr.Error(), "exceeded max depth")) {
		t.Fatalf("recoverID accepted a frame encoding/json rejects for another reason: %v", err)
	}
	if !valid && idOK {
		t.Fatal("recoverID returned an id for an invalid frame")
	}
}

func TestDecodeRequestDeepNestingEchoesID(t *testing.T) {
	long := strings.Repeat("x", maxIDBytes+1)
	for _, tc := range []struct {
		name, frame, id string
	}{
		{"deep array in unknown field", `{"id":"abc","method":"session.create","x":` + nested("[", "]", 20000) + `}`, "abc"},
		{"deep object before id", `{"x":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `, "id" : "after"}`, "after"},
		{"deep params", `{"id":"p","method":"session.attach","params":` + strings.Repeat(`[{"k":`, 6000) + `null` + strings.Repeat(`}]`, 6000) + `}`, "p"},
		{"escaped key, last duplicate wins", `{"id":"first","\u0069d":"second","x":` + nested("[", "]", 10001) + `}`, "second"},
		{"id number", `{"id":7,"x":` + nested("[", "]", 10001) + `}`, ""},
		{"id too long", `{"id":"` + long + `","x":` + nested("[", "]", 10001) + `}`, ""},
		{"no id", `{"method":"session.create","x":` + nested("[", "]", 10001) + `}`, ""},
		{"truncated", `{"id":"abc","x":` + nested("[", "]", 10001)[:15000], ""},
		{"unbalanced", `{"id":"abc","x":` + nested("[", "]", 10001) + `]}`, ""},
		{"garbage inside", `{"id":"abc","x":` + strings.Repeat("[", 10001) + "x" + strings.Repeat("]", 10001) + `}`, ""},
		{"top-level array", nested("[", "]", 20000), ""},
	} {
		_, bad := decodeRequest([]byte(tc.frame))
		if bad == nil || bad.Error == nil || bad.Error.Code != protocol.CodeParseError || bad.ID != tc.id {
			t.Errorf("%s: got %+v, want PARSE_ERROR with id %q", tc.name, bad, tc.id)
		}
		checkRecoverID(t, []byte(tc.frame))
	}
}

// TestRecoverIDMillionLevels checks that depth costs neither stack nor quadratic time.
func TestRecoverIDMillionLevels(t *testing.T) {
	frame := []byte(`{"id":"deep","x":` + nested("[", "]", 1_000_000) + `}`)
	start := time.Now()
	_, bad := decodeRequest(frame)
	if bad == nil || bad.ID != "deep" || bad.Error.Code != protocol.CodeParseError {
		t.Fatalf("got %+v", bad)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("2 MB frame took %v", d)
	}
}

func TestRecoverIDAgreesWithEncodingJSON(t *testing.T) {
	for _, frame := range []string{
		`{}`, ` { } `, `{"id":"a"}`, `{"id":"a",}`, `{"id":"a"}x`, `{"id":"a"} {}`, `{"id":null}`,
		`{"id":"a","n":[1,-0,0.5,1e5,1E+5,-1.5e-7]}`, `{"n":01}`, `{"n":1.}`, `{"n":-}`, `{"n":.5}`,
		`{"n":+1}`, `{"n":1e}`, `{"s":"\u00zz"}`, `{"s":"\x"}`, "{\"s\":\"\t\"}", "{\"s\":\"\x01\"}",
		"{\"s\":\"\xff\xfe\"}", `{"l":[true,false,null]}`, `{"l":[tru]}`, `{"l":[nul]}`, `{"l":truex}`,
		`{"a":{"b":{}},"c":[[],[{}]]}`, `{"a" "b"}`, `{"a":1 "b":2}`, `{1:2}`, `[]`, `"id"`, `null`, ``,
		`{"id":"\ud800"}`, `{"id":"a"`, `{"id":"\"`, "\ufeff{}", "{\"a\":1}\n",
	} {
		checkRecoverID(t, []byte(frame))
	}
}

package control

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// maxIDBytes bounds a request id (PROTOCOL.md §2.2).
const maxIDBytes = 1024

// request is a decoded envelope.
type request struct {
	ID     string
	Method string
	Params json.RawMessage
}

// response is what goes back for one request: exactly one of Result and Error is set.
type response struct {
	ID     string          `json:"id"`
	Result any             `json:"result,omitempty"`
	Error  *protocol.Error `json:"error,omitempty"`
}

// decodeRequest applies the envelope checks 1 and 2 of PROTOCOL.md §2.2. On failure it returns
// the error response to send (with the id echoed as far as the rules allow).
func decodeRequest(frame []byte) (request, *response) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil || fields == nil {
		// encoding/json gives up on well-formed objects nested over 10,000 levels deep; their
		// top-level id is still read (without recursion) and echoed, as check 1 asks.
		if id, idOK, valid := recoverID(frame); valid {
			echo := ""
			if idOK && len(id) <= maxIDBytes {
				echo = id
			}
			return request{}, parseError(echo, "Invalid JSON: nested too deeply")
		}
		return request{}, parseError("", "Invalid JSON: request must be a JSON object")
	}
	var id string
	idRaw, hasID := fields["id"]
	idOK := hasID && json.Unmarshal(idRaw, &id) == nil && isJSONString(idRaw)
	echo := ""
	if idOK && len(id) <= maxIDBytes {
		echo = id
	}
	if !idOK {
		return request{}, parseError(echo, "Invalid request: `id` must be a string")
	}
	var method string
	methodRaw, hasMethod := fields["method"]
	if !hasMethod || !isJSONString(methodRaw) || json.Unmarshal(methodRaw, &method) != nil {
		return request{}, parseError(echo, "Invalid request: `method` must be a string")
	}
	if len(id) > maxIDBytes {
		return request{}, &response{
			ID:    truncateUTF8(id, maxIDBytes),
			Error: protocol.Errorf(protocol.CodeInvalidParams, "id exceeds %d bytes", maxIDBytes),
		}
	}
	return request{ID: id, Method: method, Params: fields["params"]}, nil
}

func parseError(id, msg string) *response {
	return &response{ID: id, Error: protocol.Errorf(protocol.CodeParseError, "%s", msg)}
}

// isJSONString reports whether raw is a JSON string literal (json.Unmarshal into a string also
// accepts null, which is not a string here).
func isJSONString(raw json.RawMessage) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			return true
		default:
			return false
		}
	}
	return false
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

package control

import (
	"bytes"
	"encoding/json"
)

// recoverID reads the top-level "id" of a frame that encoding/json refused although it is
// well-formed — in practice one nested deeper than encoding/json's 10,000 levels, even inside
// a field nobody reads — so that its PARSE_ERROR can still echo the id (§2.2, check 1).
//
// valid reports whether frame is one syntactically valid JSON object at any depth (the same
// grammar encoding/json accepts, without its depth limit); id and idOK are the value of its
// last top-level "id" member when that is a string. Nothing recurses: open containers are kept
// on a byte stack, so time and memory are linear in len(frame) whatever the nesting.
func recoverID(frame []byte) (id string, idOK, valid bool) {
	i := skipWS(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return "", false, false
	}
	i = skipWS(frame, i+1)
	if i < len(frame) && frame[i] == '}' {
		return "", false, skipWS(frame, i+1) == len(frame)
	}
	for {
		keyStart := i
		var ok bool
		if i, ok = objectKey(frame, i); !ok {
			return "", false, false
		}
		isID := isIDKey(frame[keyStart:i])
		i = skipWS(frame, i)
		if i >= len(frame) || frame[i] != ':' {
			return "", false, false
		}
		i = skipWS(frame, i+1)
		valStart := i
		if i, ok = skipValue(frame, i); !ok {
			return "", false, false
		}
		if isID {
			// A later duplicate wins, as with encoding/json.
			id, idOK = "", false
			if frame[valStart] == '"' && json.Unmarshal(frame[valStart:i], &id) == nil {
				idOK = true
			}
		}
		i = skipWS(frame, i)
		if i >= len(frame) {
			return "", false, false
		}
		switch frame[i] {
		case ',':
			i = skipWS(frame, i+1)
			continue
		case '}':
			if skipWS(frame, i+1) != len(frame) {
				return "", false, false
			}
			return id, idOK, true
		default:
			return "", false, false
		}
	}
}

// isIDKey reports whether the string literal key decodes to "id".
func isIDKey(key []byte) bool {
	if bytes.Equal(key, []byte(`"id"`)) {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var s string
	return json.Unmarshal(key, &s) == nil && s == "id"
}

// objectKey scans the string literal starting at b[i] and returns the index after it.
func objectKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	return scanString(b, i)
}

// skipValue validates the JSON value starting at b[i] (no leading whitespace) and returns the
// index after it. Nesting is tracked on an explicit stack, never by recursion.
func skipValue(b []byte, i int) (int, bool) {
	var stack []byte // '{' or '[' for each open container
	var ok bool
	for {
		// A value is expected at i (after optional whitespace).
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch c := b[i]; {
		case c == '{':
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			if i, ok = objectKey(b, i); !ok {
				return 0, false
			}
			if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
				return 0, false
			}
			i++
			stack = append(stack, '{')
			continue
		case c == '[':
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			stack = append(stack, '[')
			continue
		case c == '"':
			if i, ok = scanString(b, i); !ok {
				return 0, false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i, ok = scanNumber(b, i); !ok {
				return 0, false
			}
		case c == 't':
			if i, ok = scanLiteral(b, i, "true"); !ok {
				return 0, false
			}
		case c == 'f':
			if i, ok = scanLiteral(b, i, "false"); !ok {
				return 0, false
			}
		case c == 'n':
			if i, ok = scanLiteral(b, i, "null"); !ok {
				return 0, false
			}
		default:
			return 0, false
		}
		// A value ended at i: close finished containers, or go on to the next element.
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := stack[len(stack)-1]
			if (top == '{' && b[i] == '}') || (top == '[' && b[i] == ']') {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
			if top == '{' {
				if i, ok = objectKey(b, i); !ok {
					return 0, false
				}
				if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i++
			}
			break
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString validates the string literal at b[i] == '"' and returns the index after it. Like
// encoding/json it rejects control characters and bad escapes, and accepts any other byte.
func scanString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

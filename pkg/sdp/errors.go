package sdp

import "strings"

// Error is a fixed error of this package. Being a string type, its values are
// constants and errors.Is matches them after wrapping.
type Error string

// Error returns the message, which clients may match on (PROTOCOL.md §3, §13.4).
func (e Error) Error() string { return string(e) }

const (
	// ErrTooLarge is returned by [CheckSize]; the control layer maps it to
	// INVALID_PARAMS with this exact message (PROTOCOL.md §6).
	ErrTooLarge Error = "SDP too large"

	// ErrInvalid wraps every syntax or structure error of [Parse], so the
	// caller can tell "the peer sent garbage" from other failures.
	ErrInvalid Error = "invalid SDP"

	// ErrAnswerNoOfferedCodec is returned by [AcceptAnswer] when the answer
	// names recognised codecs but none that we offered (PROTOCOL.md §13.4).
	ErrAnswerNoOfferedCodec Error = "SDP answer contains no codecs from the original offer"

	// ErrAnswerNoAddress is returned by [AcceptAnswer] when the answer has no
	// usable connection address or port (PROTOCOL.md §13.4).
	ErrAnswerNoAddress Error = "SDP answer has no connection address"
)

// NoCommonCodecError is returned by [BuildAnswer] when the offer has no codec
// we can use. The caller reports it as ENDPOINT_ERROR and creates no endpoint
// (PROTOCOL.md §0 D9).
type NoCommonCodecError struct {
	// Offered names what the offer listed, in m-line order: encoding names,
	// or payload type numbers where the name is unknown.
	Offered []string
	// Supported names the codecs we would have accepted, in our order.
	Supported []string
}

// Error returns "No supported codec in offer (offered: …; supported: …)".
func (e *NoCommonCodecError) Error() string {
	return "No supported codec in offer (offered: " + joinOrNone(e.Offered) +
		"; supported: " + joinOrNone(e.Supported) + ")"
}

func joinOrNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

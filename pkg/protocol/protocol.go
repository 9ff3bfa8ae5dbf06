// Package protocol holds the vocabulary of rtpbridge's WebSocket control protocol that more than
// one package needs: error codes, the Error type carried from a session back to the client, and
// event names with their delivery tier (PROTOCOL.md §3, §8, §9).
package protocol

import "fmt"

// Error codes of PROTOCOL.md §3.
const (
	CodeParseError          = "PARSE_ERROR"
	CodeInvalidRequest      = "INVALID_REQUEST"
	CodeUnknownMethod       = "UNKNOWN_METHOD"
	CodeInvalidParams       = "INVALID_PARAMS"
	CodeNoSession           = "NO_SESSION"
	CodeSessionAlreadyBound = "SESSION_ALREADY_BOUND"
	CodeSessionNotFound     = "SESSION_NOT_FOUND"
	CodeSessionNotOrphaned  = "SESSION_NOT_ORPHANED"
	CodeSessionBusy         = "SESSION_BUSY"
	CodeSessionGone         = "SESSION_GONE"
	CodeSessionUnresponsive = "SESSION_UNRESPONSIVE"
	CodeShuttingDown        = "SHUTTING_DOWN"
	CodeMaxSessionsReached  = "MAX_SESSIONS_REACHED"
	CodeEndpointError       = "ENDPOINT_ERROR"
	CodeRecordingError      = "RECORDING_ERROR"
	CodeVADError            = "VAD_ERROR"
	CodeFaxDetectError      = "FAX_DETECT_ERROR"
	CodeTransferFailed      = "TRANSFER_FAILED"
	CodeStatsError          = "STATS_ERROR"
	CodeInternalError       = "INTERNAL_ERROR"
)

// Error is a protocol-level failure: it becomes the `error` object of a response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a protocol error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Event names of PROTOCOL.md §8 and §29.
const (
	EventEndpointStateChanged  = "endpoint.state_changed"
	EventFileFinished          = "endpoint.file.finished"
	EventRecordingStopped      = "recording.stopped"
	EventSessionIdleTimeout    = "session.idle_timeout"
	EventSessionEmptyTimeout   = "session.empty_timeout"
	EventDTMF                  = "dtmf"
	EventToneFinished          = "endpoint.tone.finished"
	EventMediaTimeout          = "endpoint.media_timeout"
	EventRTCPBye               = "endpoint.rtcp_bye"
	EventTransferredOut        = "endpoint.transferred_out"
	EventTransferredIn         = "endpoint.transferred_in"
	EventStats                 = "stats"
	EventVADSpeechStarted      = "vad.speech_started"
	EventVADSilence            = "vad.silence"
	EventVADError              = "vad.error"
	EventEndpointRemoved       = "endpoint.removed"
	EventSessionOrphaned       = "session.orphaned"
	EventEventsDropped         = "events.dropped"
	EventSerializationFallback = "error"
	// WebSocket audio endpoints (§30), all critical.
	EventWSConnected      = "endpoint.ws.connected"
	EventWSConnectTimeout = "endpoint.ws.connect_timeout"
	EventWSDisconnected   = "endpoint.ws.disconnected"
)

// IsCritical reports whether an event travels on the critical queue (PROTOCOL.md §9).
func IsCritical(event string) bool {
	switch event {
	case EventEndpointStateChanged, EventRecordingStopped, EventFileFinished,
		EventSessionIdleTimeout, EventSessionEmptyTimeout,
		EventWSConnected, EventWSConnectTimeout, EventWSDisconnected:
		return true
	}
	return false
}

// Events of fax tone detection (PROTOCOL.md §31).
const (
	EventFaxCNGDetected = "fax.cng_detected"
	EventFaxCEDDetected = "fax.ced_detected"
	EventFaxError       = "fax.error"
)

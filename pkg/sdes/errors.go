package sdes

import (
	"errors"
	"fmt"

	"github.com/pion/srtp/v3"
)

// Error classes returned (wrapped) by the Unprotect methods, so the caller
// can count and log them (rtpbridge_srtp_errors_total counts all three).
// Test with errors.Is.
var (
	// ErrAuth: the packet failed authentication under every key that was
	// tried (wrong key, tampering, or an unknown MKI).
	ErrAuth = errors.New("srtp authentication failed")
	// ErrReplay: the packet index was already seen or is older than the
	// replay window (RFC 3711 §3.3.2).
	ErrReplay = errors.New("srtp replayed packet")
	// ErrMalformed: the packet is not RTP/RTCP or too short to carry the
	// suite's trailer.
	ErrMalformed = errors.New("malformed srtp packet")
	// ErrNoKey: no peer key installed yet, nothing can be decrypted.
	ErrNoKey = errors.New("no srtp receive key")
)

// errKind classifies a pion/srtp error without allocating; the wrapping
// with context happens once, for the error actually returned.
type errKind uint8

const (
	kindNone errKind = iota
	kindAuth
	kindReplay
	kindMalformed
)

func (k errKind) sentinel() error {
	switch k {
	case kindAuth:
		return ErrAuth
	case kindReplay:
		return ErrReplay
	default:
		return ErrMalformed
	}
}

// classify maps a pion error to a kind. replayed is the flag our replay
// detector wrapper raised during the call: pion's own duplicate error type
// is unexported, and the flag is exact rather than a string match.
func classify(err error, replayed bool) errKind {
	switch {
	case err == nil:
		return kindNone
	case replayed:
		return kindReplay
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag), errors.Is(err, srtp.ErrMKINotFound):
		return kindAuth
	default:
		return kindMalformed
	}
}

func wrapKind(what string, k errKind, err error) error {
	return fmt.Errorf("sdes: %s: %w: %w", what, k.sentinel(), err)
}

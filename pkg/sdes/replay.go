package sdes

import "github.com/pion/transport/v5/replaydetector"

// Largest indices pion/srtp feeds its replay detectors: the 48-bit SRTP
// packet index (RFC 3711 §3.3.1) and the 31-bit SRTCP index (§3.4).
const (
	maxSRTPIndex  = 1<<48 - 1
	maxSRTCPIndex = 1<<31 - 1
)

// flaggingDetector wraps pion's sliding-window detector and raises *flag
// when a check fails, which is how we tell a replay from other failures.
// It implements both detector interfaces so pion keeps using the
// allocation-free CheckSeq/Accept path.
type flaggingDetector struct {
	inner replaydetector.CheckAccepter
	flag  *bool
}

func newFlaggingDetector(window uint, maxSeq uint64, flag *bool) replaydetector.ReplayDetector {
	// replaydetector.New's result implements CheckAccepter (documented).
	det := replaydetector.New(window, maxSeq)
	if inner, ok := det.(replaydetector.CheckAccepter); ok {
		return &flaggingDetector{inner: inner, flag: flag}
	}
	return &flaggingCheckOnly{inner: det, flag: flag}
}

// flaggingCheckOnly is the fallback should a future replaydetector.New stop
// implementing CheckAccepter: same flagging through the one-phase API.
type flaggingCheckOnly struct {
	inner replaydetector.ReplayDetector
	flag  *bool
}

// Check implements replaydetector.ReplayDetector.
func (d *flaggingCheckOnly) Check(seq uint64) (func() bool, bool) {
	accept, ok := d.inner.Check(seq)
	if !ok {
		*d.flag = true
	}
	return accept, ok
}

// Check implements replaydetector.ReplayDetector.
func (d *flaggingDetector) Check(seq uint64) (func() bool, bool) {
	tok := d.CheckSeq(seq)
	if !tok.Passed() {
		return func() bool { return false }, false
	}
	return func() bool { return d.inner.Accept(tok) }, true
}

// CheckSeq implements replaydetector.CheckAccepter.
func (d *flaggingDetector) CheckSeq(seq uint64) replaydetector.Token {
	tok := d.inner.CheckSeq(seq)
	if !tok.Passed() {
		*d.flag = true
	}
	return tok
}

// Accept implements replaydetector.CheckAccepter.
func (d *flaggingDetector) Accept(tok replaydetector.Token) bool { return d.inner.Accept(tok) }

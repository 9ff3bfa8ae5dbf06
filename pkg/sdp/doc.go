// Package sdp is rtpbridge's offer/answer model for plain RTP (and SDES-SRTP) legs
// (PROTOCOL.md §12, §13, §15; RFC 4566 for the syntax, RFC 3264 for offer/answer,
// RFC 4733 for telephone-event).
//
// It reads a peer's SDP into a [Description] ([Parse]), writes our own offers
// ([BuildOffer]) and answers ([BuildAnswer]), and judges a peer's answer to our
// offer ([AcceptAnswer]). Text is parsed and generated with pion/sdp/v3. That
// parser (v3.0.20) follows RFC 4566 strictly and rejects SDPs real SIP peers
// send: a missing o=, s= or t= line, a session c= after t= or a session a=
// before it, bandwidth types it does not know (e.g. "b=as:64"), m=image
// sections (T.38) and a last line without a line ending. [Parse] therefore
// first rewrites the input into a canonical form that keeps only the lines
// this package reads, in RFC order.
//
// Crypto attributes (RFC 4568) are carried as raw value strings, everything
// after "a=crypto:"; package sdes interprets them.
//
// Everything here is pure: no goroutines, no I/O, no package state. Every
// function is safe on hostile input: work is bounded by the input size and by
// the caps of the limits below, and errors are returned, never panics.
package sdp

// Package rtpnet holds the transport-level building blocks of plain RTP legs
// (PROTOCOL.md §14): the even/odd UDP port-pair allocator over rtp_port_range,
// classification and zero-allocation parsing of inbound datagrams, and the
// symmetric-RTP address learner.
//
// Nothing in this package starts goroutines. The allocator is safe for
// concurrent use by many sessions; the classifier and parser are pure
// functions; a Learner belongs to one endpoint and is driven by the goroutine
// that owns that endpoint (the session loop).
package rtpnet

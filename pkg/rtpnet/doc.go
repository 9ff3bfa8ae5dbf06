// Package rtpnet holds the transport-level building blocks of plain RTP legs
// (PROTOCOL.md §14): raw non-blocking UDP sockets with batched, allocation-free
// receive and send, the even/odd UDP port-pair allocator over rtp_port_range,
// classification and zero-allocation parsing of inbound datagrams, and the
// source latching of symmetric RTP with rtp_source_networks (§0 D24).
//
// Nothing in this package starts goroutines. The allocator is safe for
// concurrent use by many sessions; the classifier and parser are pure
// functions; a Learner belongs to one endpoint and is used under that
// endpoint's session lock.
package rtpnet

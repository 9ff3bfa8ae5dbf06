package endpoint

import "github.com/rtpbridge/rtpbridge/pkg/mediaio"

// Mover is implemented by legs that can move to another session with their transport intact
// (endpoint.transfer, PROTOCOL.md §22 with D4): sockets, ICE/DTLS/SRTP state, the latched
// source, statistics and the outgoing stream (OutStream, D14) all stay with the leg, so its
// peer sees no change. Only the session it reports to changes.
type Mover interface {
	// Suspend stops handing received datagrams to the leg's sink and waits for a hand-over in
	// progress. The sockets stay open: what arrives meanwhile waits in the kernel for Resume.
	// Called under the old session's lock.
	Suspend()
	// Resume hands received datagrams to sink again, read by worker w, with scratch as the
	// packet memory (the new session's lease). Called under the new session's lock; on error
	// the leg stays suspended.
	Resume(w *mediaio.Worker, sink Sink, scratch *Lease) error
}

var _ Mover = (*RTP)(nil)

// Suspend implements Mover: the sockets leave their media worker (Registration.Remove waits
// for a read in progress).
func (e *RTP) Suspend() {
	e.stopReaders()
	for i := range e.readers {
		e.readers[i].reg = nil
	}
}

// Resume implements Mover: the sockets join w, and packets go to sink.
func (e *RTP) Resume(w *mediaio.Worker, sink Sink, scratch *Lease) error {
	e.scratch = scratch
	e.out.Rebase()
	return e.Start(w, sink)
}

// Rebase makes the next packet start a new source on the stream (continuing sequence and
// timestamp from where the stream is, with the marker bit). A leg that moves to another
// session calls it: source identities are per session, so a source there may carry the same
// identity as the one it left and must not be taken for it.
func (o *OutStream) Rebase() { o.source = 0 }

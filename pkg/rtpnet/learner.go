package rtpnet

import (
	"net/netip"
	"time"
)

// LearningWindow is how long symmetric-RTP learning stays open after
// creation and after each SRTP rekey (PROTOCOL §14, §28).
const LearningWindow = 5 * time.Second

// Learner implements symmetric RTP (PROTOCOL §14; the NAT traversal practice
// of RFC 4961 "symmetric RTP"): media is sent back to where the peer's media
// comes from rather than to the address in its SDP.
//
// While the window is open every accepted inbound RTP packet from a source
// other than the current remote replaces it (newest wins). The first packet
// observed once the window has closed is handled the same way and then locks
// the address, so a peer that only starts sending after the window (a call
// that rings for a while) is still learned, and from then on stray sources
// never move it. Sources are never filtered: Observe only steers where we
// send.
//
// A Learner is not safe for concurrent use; it belongs to the goroutine that
// owns the endpoint. Callers pass the time, which keeps tests deterministic.
type Learner struct {
	remote   netip.AddrPort
	deadline time.Time
	locked   bool
}

// NewLearner starts learning at now with the remote address from SDP
// (the zero AddrPort when not known yet, e.g. before an answer).
func NewLearner(sdpRemote netip.AddrPort, now time.Time) *Learner {
	return &Learner{remote: normalize(sdpRemote), deadline: now.Add(LearningWindow)}
}

// Observe records the source of an accepted inbound RTP packet (after SRTP
// authentication; never call it for packets that failed checks). It reports
// whether the remote address changed.
func (l *Learner) Observe(src netip.AddrPort, now time.Time) (changed bool) {
	if l.locked || !src.IsValid() {
		return false
	}
	if !now.Before(l.deadline) {
		l.locked = true
	}
	src = normalize(src)
	if src == l.remote {
		return false
	}
	l.remote = src
	return true
}

// Reopen opens a new window of LearningWindow from now (after an SRTP
// rekey) and unlocks the address.
func (l *Learner) Reopen(now time.Time) {
	l.deadline = now.Add(LearningWindow)
	l.locked = false
}

// SetRemote replaces the remote address with one from signalling (an SDP
// answer accepted after creation) without touching the window or the lock.
func (l *Learner) SetRemote(addr netip.AddrPort) { l.remote = normalize(addr) }

// Remote is the address RTP is sent to; the zero AddrPort while unknown.
func (l *Learner) Remote() netip.AddrPort { return l.remote }

// Locked reports whether the address is fixed until the next Reopen.
func (l *Learner) Locked() bool { return l.locked }

// RTCPRemote is where RTCP goes: the RTP address itself with rtcp-mux, else
// the same host at RTP port + 1 (RFC 3550 §11). It is the zero AddrPort when
// the remote is unknown or its port is 65535 (no port + 1 exists).
func (l *Learner) RTCPRemote(mux bool) netip.AddrPort {
	if !l.remote.IsValid() {
		return netip.AddrPort{}
	}
	if mux {
		return l.remote
	}
	p := l.remote.Port()
	if p == 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(l.remote.Addr(), p+1)
}

// normalize unmaps IPv4-mapped IPv6 addresses so a dual-stack socket's
// ::ffff:a.b.c.d source compares equal to a.b.c.d from SDP.
func normalize(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

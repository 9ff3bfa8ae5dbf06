package rtpnet

import (
	"net/netip"
	"time"
)

// LearningWindow is how long a leg may re-latch its source after creation,
// after an answer is accepted and after each SRTP rekey (PROTOCOL.md §0 D24,
// §28).
const LearningWindow = 5 * time.Second

// Verdict is what a Latch says about one inbound packet's source.
type Verdict uint8

// Verdicts of Latch.Check.
const (
	// Reject: the packet comes from a source that is not the latched one and
	// may not latch now. Drop it before any other processing (no SRTP
	// decryption: a foreign packet must not touch the replay window) and
	// count it in rtpbridge_packets_rejected_total.
	Reject Verdict = iota
	// Accept: the packet comes from the latched source.
	Accept
	// Learn: the source may latch. Process the packet and, if it proves
	// valid (authenticated, well-formed, negotiated payload type), call
	// Commit: only then does the source latch.
	Learn
)

// Latch is one direction's symmetric-RTP source lock (PROTOCOL.md §0 D24;
// the strict-source practice of media relays against "RTP bleed").
//
// The first valid packet from a source that the SourcePolicy lets latch
// fixes the source to that exact address and port; from then on packets
// from any other source are rejected. Inside a learning window (after
// creation, an accepted answer or an SRTP rekey) the source may be latched
// once: a peer that moved (a new NAT binding, a re-INVITE) is followed, and
// then the latch locks again. A leg whose peer has never sent latches its
// first valid packet whenever it comes, so a call that rang for a while is
// not left one-way.
//
// A Latch is not safe for concurrent use; it belongs to the goroutine that
// owns the endpoint. Callers pass the time, which keeps tests deterministic.
type Latch struct {
	source   netip.AddrPort // the latched source; invalid until the first valid packet
	deadline time.Time      // end of the current learning window
	latched  bool           // a latch happened in the current window
}

// Source is the latched source, the zero AddrPort before the first latch.
func (l *Latch) Source() netip.AddrPort { return l.source }

// reopen starts a learning window at now.
func (l *Latch) reopen(now time.Time) {
	l.deadline = now.Add(LearningWindow)
	l.latched = false
}

// check classifies a packet from src (already normalised); signalled is the
// peer's address from SDP, used by a policy that only trusts it.
func (l *Latch) check(src netip.AddrPort, signalled netip.Addr, policy *SourcePolicy, now time.Time) Verdict {
	if !src.IsValid() {
		return Reject
	}
	if l.source.IsValid() {
		if src == l.source {
			return Accept
		}
		if l.latched || !now.Before(l.deadline) {
			return Reject
		}
	}
	if !policy.MayLatch(src.Addr(), signalled) {
		return Reject
	}
	return Learn
}

// commit latches src (already normalised) and reports whether the source
// changed.
func (l *Latch) commit(src netip.AddrPort, now time.Time) bool {
	if src == l.source {
		return false
	}
	l.source = src
	if now.Before(l.deadline) {
		l.latched = true
	}
	return true
}

// Learner holds the RTP and RTCP latches of one leg and the addresses that
// signalling gave for them, and says where media and RTCP are sent: to the
// latched sources once known (symmetric RTP, RFC 4961), else to the SDP
// addresses.
type Learner struct {
	policy    *SourcePolicy
	rtp, rtcp Latch
	sdpRTP    netip.AddrPort // the peer's SDP c=/m= address
	sdpRTCP   netip.AddrPort // its a=rtcp address (RFC 3605), if any
}

// NewLearner starts a leg's learning at now (creation opens the first
// window). policy says who may latch; nil means any source.
func NewLearner(policy *SourcePolicy, now time.Time) *Learner {
	if policy == nil {
		policy = &SourcePolicy{}
	}
	l := &Learner{policy: policy}
	l.Reopen(now)
	return l
}

// SetSignalled records the peer's addresses from its SDP (the zero
// AddrPort when it gave none). It never moves a latch.
func (l *Learner) SetSignalled(rtp, rtcp netip.AddrPort) {
	l.sdpRTP, l.sdpRTCP = normalize(rtp), normalize(rtcp)
}

// Reopen opens a new learning window of LearningWindow from now, for RTP
// and RTCP alike (an accepted answer, an SRTP rekey).
func (l *Learner) Reopen(now time.Time) {
	l.rtp.reopen(now)
	l.rtcp.reopen(now)
}

// CheckRTP classifies an inbound RTP packet by its source.
func (l *Learner) CheckRTP(src netip.AddrPort, now time.Time) Verdict {
	return l.rtp.check(normalize(src), l.sdpRTP.Addr(), l.policy, now)
}

// CommitRTP latches the source of a valid RTP packet that CheckRTP said
// may Learn, and reports whether the media destination changed. An RTCP
// latch on another host is dropped: RTCP must come from the media's host.
func (l *Learner) CommitRTP(src netip.AddrPort, now time.Time) bool {
	src = normalize(src)
	if r := l.rtcp.source; r.IsValid() && r.Addr() != src.Addr() {
		l.rtcp.source = netip.AddrPort{}
	}
	return l.rtp.commit(src, now)
}

// CheckRTCP classifies an inbound RTCP packet by its source. RTCP latches
// its own source port independently of RTP (a=rtcp, port + 1, rtcp-mux),
// but once RTP is latched only from the same host: a flood of forged RTCP
// from elsewhere can neither latch nor raise a BYE.
func (l *Learner) CheckRTCP(src netip.AddrPort, now time.Time) Verdict {
	src = normalize(src)
	if m := l.rtp.source; m.IsValid() && src.Addr() != m.Addr() {
		return Reject
	}
	signalled := l.sdpRTCP.Addr()
	if !signalled.IsValid() {
		signalled = l.sdpRTP.Addr()
	}
	return l.rtcp.check(src, signalled, l.policy, now)
}

// CommitRTCP latches the source of a valid RTCP packet that CheckRTCP said
// may Learn.
func (l *Learner) CommitRTCP(src netip.AddrPort, now time.Time) bool {
	return l.rtcp.commit(normalize(src), now)
}

// Remote is where RTP is sent: the latched source, else the SDP address;
// the zero AddrPort while neither is known.
func (l *Learner) Remote() netip.AddrPort {
	if s := l.rtp.Source(); s.IsValid() {
		return s
	}
	return l.sdpRTP
}

// Latched reports whether an RTP source is latched.
func (l *Learner) Latched() bool { return l.rtp.Source().IsValid() }

// RTCPRemote is where RTCP goes: with rtcp-mux the RTP destination itself;
// else the latched RTCP source, else the SDP's a=rtcp address, else the RTP
// destination's host at port + 1 (RFC 3550 §11). It is the zero AddrPort
// when unknown or when the RTP port is 65535 (no port + 1 exists).
func (l *Learner) RTCPRemote(mux bool) netip.AddrPort {
	remote := l.Remote()
	if mux {
		return remote
	}
	if s := l.rtcp.Source(); s.IsValid() {
		return s
	}
	if l.sdpRTCP.IsValid() {
		return l.sdpRTCP
	}
	if !remote.IsValid() || remote.Port() == 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(remote.Addr(), remote.Port()+1)
}

// normalize unmaps IPv4-mapped IPv6 addresses so a dual-stack socket's
// ::ffff:a.b.c.d source compares equal to a.b.c.d from SDP.
func normalize(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return netip.AddrPort{}
	}
	if a := ap.Addr(); a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	return ap
}

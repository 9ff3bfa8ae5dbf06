package sdes

import (
	"fmt"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// SwitchOver is how long a pending peer key and the old one are both
// accepted after SetPendingRemote (PROTOCOL §15 rekey step 2, §28).
const SwitchOver = 5 * time.Second

// Option configures a Transport.
type Option func(*Transport)

// WithClock sets the clock used to check the switch-over deadline when a
// packet arrives (PROTOCOL §15 step 4). Default time.Now. Tests inject a
// fake clock; the session loop may pass its own.
func WithClock(now func() time.Time) Option {
	return func(t *Transport) {
		if now != nil {
			t.now = now
		}
	}
}

// Transport holds the SRTP/SRTCP state of one SDES-keyed leg: send
// contexts from OUR key (Local) and receive contexts from the PEER's key
// (Remote), never the other way round (PROTOCOL §15). Replay protection is
// on (64-packet windows, more if the peer's WSH asks) and the rollover
// counter follows sequence wrap (RFC 3711 §3.3.1, done by pion/srtp).
//
// Concurrency: the four packet methods (ProtectRTP, ProtectRTCP,
// UnprotectRTP, UnprotectRTCP) use disjoint state, so each may run on its
// own goroutine (e.g. separate RTP and RTCP socket readers); none may run
// concurrently with itself. Rekey changes the state of both Protect
// methods, SetRemote and SetPendingRemote that of both Unprotect methods:
// serialise them with those (call them from the goroutine that does that
// work, typically the session loop). Accessors follow the same rule.
//
// Buffers: every packet method writes into dst when cap(dst) is large
// enough (Protect: len(pkt) + at most 16 bytes of tag + the MKI; Unprotect:
// len(pkt)) and otherwise allocates. Pass buf[:0] of a reused buffer to
// stay allocation-free. dst must not overlap pkt.
type Transport struct {
	now func() time.Time // read-only after NewTransport

	// Send state: separate contexts from the same key for SRTP and SRTCP,
	// so RTP and RTCP may be protected from different goroutines (a pion
	// Context is single-threaded). Cryptographically this is one context:
	// SRTP and SRTCP derive their session keys with distinct labels
	// (RFC 3711 §4.3.1) and keep separate indices anyway.
	local  Crypto
	txRTP  *srtp.Context
	txRTCP *srtp.Context
	hdrRTP rtp.Header  // reused so pion does not allocate a header per packet
	hdrRTC rtcp.Header // ditto

	// Receive state.
	remote    Crypto // the peer key installed last (the pending one during a switch-over)
	hasRemote bool
	rtp       rxPath
	rtcp      rxPath
}

// rxPath is the receive state of SRTP or of SRTCP. They are separate
// because PROTOCOL §15 switches them separately ("SRTCP follows the same
// pattern": the first SRTP packet under the new key does not promote
// SRTCP) and so that RTP and RTCP may be received on different goroutines.
type rxPath struct {
	isRTCP bool
	what   string // "unprotect RTP" / "unprotect RTCP", for errors
	cur    *rxCtx
	// pending is the peer's new key, tried first during a switch-over.
	pending *rxCtx
	// alt is the pending key with the old rollover counter carried over
	// (SRTP only, only when that ROC is not 0). RFC 4568 does not say
	// whether a new SDES key restarts the ROC: fresh-context peers (pion,
	// libsrtp srtp_create) restart at 0, srtp_update-style peers keep it.
	// Trying both during the switch-over accepts either.
	alt *rxCtx
	// prev is the old key after an early promotion, kept until the deadline
	// so packets reordered across the switch are not lost.
	prev *rxCtx
	// transition: a switch-over runs until deadline (pending, alt or prev set).
	transition bool
	deadline   time.Time
	// replayed is raised by this path's replay detectors during one decrypt.
	replayed bool
	hdrRTP   rtp.Header
	hdrRTCP  rtcp.Header
	lastSSRC uint32 // SRTP only: last authenticated stream, for alt's ROC
	haveSSRC bool
}

// NewTransport makes a Transport sending with local (our key, exactly one
// master key). Install the peer's key with SetRemote before Unprotect calls
// succeed; until then they return ErrNoKey.
func NewTransport(local Crypto, opts ...Option) (*Transport, error) {
	t := &Transport{now: time.Now}
	for _, o := range opts {
		o(t)
	}
	t.rtp = rxPath{what: "unprotect RTP"}
	t.rtcp = rxPath{isRTCP: true, what: "unprotect RTCP"}
	if err := t.Rekey(local); err != nil {
		return nil, err
	}
	return t, nil
}

func newTxContext(local Crypto) (*srtp.Context, error) {
	if err := local.Validate(); err != nil {
		return nil, fmt.Errorf("sdes: send key: %w", err)
	}
	if len(local.Keys) != 1 {
		return nil, fmt.Errorf("sdes: send key: want exactly one master key, got %d", len(local.Keys))
	}
	k := local.Keys[0]
	n := local.Suite.KeyLen()
	var opts []srtp.ContextOption
	if k.MKILen > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(k.mkiBytes()))
	}
	ctx, err := srtp.CreateContext(k.KeySalt[:n], k.KeySalt[n:], local.Suite.Profile(), opts...)
	if err != nil {
		return nil, fmt.Errorf("sdes: SRTP TX init failed: %w", err)
	}
	return ctx, nil
}

// rxCtx is one receive key of a path. A single key with an MKI also gets a
// bare twin without the MKI: D25 says a signalled MKI may be ignored (the
// original does, so peers written against it send no MKI), while RFC 3711
// peers put it in every packet. Whichever form authenticates first is kept
// and the other dropped, so a packet can never be accepted twice (once per
// form, with separate replay windows).
type rxCtx struct {
	main *srtp.Context
	bare *srtp.Context // nil unless the key has an MKI and no form has won yet
}

// newRxContext builds a receive context of path p for the peer's key:
// replay windows on, every master key registered under its MKI.
func newRxContext(p *rxPath, peer Crypto) (*rxCtx, error) {
	main, err := newRxSRTPContext(p, peer, true)
	if err != nil {
		return nil, err
	}
	c := &rxCtx{main: main}
	if len(peer.Keys) == 1 && peer.Keys[0].MKILen > 0 {
		if c.bare, err = newRxSRTPContext(p, peer, false); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newRxSRTPContext(p *rxPath, peer Crypto, withMKI bool) (*srtp.Context, error) {
	win := peer.windowSize()
	flag := &p.replayed
	opts := []srtp.ContextOption{
		srtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
			return newFlaggingDetector(win, maxSRTPIndex, flag)
		}),
		srtp.SRTCPReplayDetectorFactory(func() replaydetector.ReplayDetector {
			return newFlaggingDetector(minWindow, maxSRTCPIndex, flag)
		}),
	}
	k := peer.Keys[0]
	if withMKI && k.MKILen > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(k.mkiBytes()))
	}
	n := peer.Suite.KeyLen()
	ctx, err := srtp.CreateContext(k.KeySalt[:n], k.KeySalt[n:], peer.Suite.Profile(), opts...)
	if err != nil {
		return nil, fmt.Errorf("sdes: SRTP RX init failed: %w", err)
	}
	if !withMKI {
		return ctx, nil
	}
	for _, k := range peer.Keys[1:] {
		if err := ctx.AddCipherForMKI(k.mkiBytes(), k.KeySalt[:n], k.KeySalt[n:]); err != nil {
			return nil, fmt.Errorf("sdes: SRTP RX init failed: MKI %d: %w", k.MKI, err)
		}
	}
	return ctx, nil
}

// setROC sets a stream's rollover counter in every form of the key.
func (c *rxCtx) setROC(ssrc, roc uint32) {
	c.main.SetROC(ssrc, roc)
	if c.bare != nil {
		c.bare.SetROC(ssrc, roc)
	}
}

func (t *Transport) checkPeer(peer Crypto) error {
	if err := peer.Validate(); err != nil {
		return fmt.Errorf("sdes: receive key: %w", err)
	}
	// A peer may echo our key (the original's test peer and some SIP
	// stacks do). With AES-CM the keystream depends on the SSRC, and the
	// peer's SSRC differs from ours, so no keystream is reused; the one
	// hole, our own packets reflected back authenticating as the peer's,
	// is closed by the caller dropping inbound packets with our sending
	// SSRC (see SharedKey).
	return nil
}

// SharedKey reports whether the peer's key (any installed one) shares
// master key material with our send key. Such a leg must drop inbound
// packets that carry our own sending SSRC: they would authenticate.
func (t *Transport) SharedKey() bool {
	return t.hasRemote && sameKey(t.remote, t.local)
}

// SetRemote installs the peer's key for receiving at once, ending any
// switch-over (first key of a call, or a hard replacement).
func (t *Transport) SetRemote(peer Crypto) error {
	if err := t.checkPeer(peer); err != nil {
		return err
	}
	if t.hasRemote && sameCrypto(peer, t.remote) {
		return nil // see SetPendingRemote
	}
	r, err := newRxContext(&t.rtp, peer)
	if err != nil {
		return err
	}
	rc, err := newRxContext(&t.rtcp, peer)
	if err != nil {
		return err
	}
	t.rtp.install(r)
	t.rtcp.install(rc)
	t.remote, t.hasRemote = peer, true
	return nil
}

// install makes c the only context of p, ending any switch-over.
func (p *rxPath) install(c *rxCtx) {
	p.cur, p.pending, p.alt, p.prev = c, nil, nil, nil
	p.transition = false
}

// SetPendingRemote installs the peer's new key (from its answer to our
// rekey offer) as pending and starts the SwitchOver window at now
// (PROTOCOL §15 step 2). Until the first packet authenticates under it, or
// until the deadline passes (checked on packet arrival), the old key keeps
// working. With no key installed yet it behaves like SetRemote. A second
// call during a switch-over replaces a pending key that has not been used
// yet and restarts the window.
func (t *Transport) SetPendingRemote(peer Crypto, now time.Time) error {
	if t.rtp.cur == nil {
		return t.SetRemote(peer)
	}
	if err := t.checkPeer(peer); err != nil {
		return err
	}
	if sameCrypto(peer, t.remote) {
		// The peer kept its key (a common answer to our rekey offer): keep the contexts, so
		// the replay window and rollover counter carry on. Fresh contexts would accept a
		// replay of every packet already seen (D24).
		return nil
	}
	// An earlier switch-over whose deadline passed without a packet to
	// notice it is completed first, so its key is the "old" one now.
	t.rtp.expire(now)
	t.rtcp.expire(now)
	r, err := newRxContext(&t.rtp, peer)
	if err != nil {
		return err
	}
	rc, err := newRxContext(&t.rtcp, peer)
	if err != nil {
		return err
	}
	var alt *rxCtx
	if t.rtp.haveSSRC {
		if roc, ok := t.rtp.cur.main.ROC(t.rtp.lastSSRC); ok && roc != 0 {
			if alt, err = newRxContext(&t.rtp, peer); err != nil {
				return err
			}
			alt.setROC(t.rtp.lastSSRC, roc)
		}
	}
	deadline := now.Add(SwitchOver)
	t.rtp.startSwitchOver(r, alt, deadline)
	t.rtcp.startSwitchOver(rc, nil, deadline)
	t.remote = peer
	return nil
}

// startSwitchOver installs a pending context (replacing one not yet used)
// and drops stragglers of an earlier switch-over.
func (p *rxPath) startSwitchOver(pending, alt *rxCtx, deadline time.Time) {
	p.pending, p.alt, p.prev = pending, alt, nil
	p.transition = true
	p.deadline = deadline
}

// Rekey replaces our send key; the next protected packet uses it
// (PROTOCOL §15 step 1). The new context starts a fresh packet index
// (ROC 0, SRTCP index restart) as a newly created SRTP session does; that
// is safe because the master key is new (RFC 3711 §9.2).
func (t *Transport) Rekey(newLocal Crypto) error {
	txRTP, err := newTxContext(newLocal)
	if err != nil {
		return err
	}
	txRTCP, err := newTxContext(newLocal)
	if err != nil {
		return err
	}
	t.local, t.txRTP, t.txRTCP = newLocal, txRTP, txRTCP
	return nil
}

// Local returns our current send key. Do not modify its slices.
func (t *Transport) Local() Crypto { return t.local }

// Remote returns the peer key installed last (during a switch-over, the
// pending one) and whether any is installed. Do not modify its slices.
func (t *Transport) Remote() (Crypto, bool) { return t.remote, t.hasRemote }

// Pending reports whether a pending peer key is still waiting for its
// first authenticated SRTP or SRTCP packet with the deadline not yet
// passed (by the Transport's clock).
func (t *Transport) Pending() bool {
	now := t.now()
	return t.rtp.waiting(now) || t.rtcp.waiting(now)
}

func (p *rxPath) waiting(now time.Time) bool {
	return p.pending != nil && now.Before(p.deadline)
}

// ProtectRTP encrypts and authenticates one RTP packet with our key and
// returns the SRTP packet (in dst's storage when it fits).
func (t *Transport) ProtectRTP(dst, pkt []byte) ([]byte, error) {
	out, err := t.txRTP.EncryptRTP(dst, pkt, &t.hdrRTP)
	if err != nil {
		return nil, fmt.Errorf("sdes: protect RTP: %w", err)
	}
	return out, nil
}

// ProtectRTCP encrypts and authenticates one (compound) RTCP packet with our
// key, E flag set (PROTOCOL §15), and returns the SRTCP packet.
//
// pion/srtp numbers the first SRTCP packet of a context 1, not 0 as
// PROTOCOL §15 and RFC 3711 §3.4 put it; receivers accept any index.
func (t *Transport) ProtectRTCP(dst, pkt []byte) ([]byte, error) {
	out, err := t.txRTCP.EncryptRTCP(dst, pkt, &t.hdrRTC)
	if err != nil {
		return nil, fmt.Errorf("sdes: protect RTCP: %w", err)
	}
	return out, nil
}

// UnprotectRTP authenticates and decrypts one SRTP packet with the peer's
// key and returns the clear RTP packet.
//
// Its output is the single point where clear packets exist on an SDES leg:
// recording and VAD taps read the packet returned here, before routing.
//
// Errors wrap ErrAuth, ErrReplay, ErrMalformed or ErrNoKey; the packet must
// then be dropped (and counted in rtpbridge_srtp_errors_total).
func (t *Transport) UnprotectRTP(dst, pkt []byte) ([]byte, error) {
	return t.rtp.unprotect(t.now, dst, pkt)
}

// UnprotectRTCP authenticates and decrypts one SRTCP packet with the peer's
// key and returns the clear RTCP packet. Errors as for UnprotectRTP.
func (t *Transport) UnprotectRTCP(dst, pkt []byte) ([]byte, error) {
	return t.rtcp.unprotect(t.now, dst, pkt)
}

func (p *rxPath) unprotect(now func() time.Time, dst, pkt []byte) ([]byte, error) {
	if p.transition {
		p.expire(now())
	}
	if p.cur == nil {
		return nil, fmt.Errorf("sdes: %s: %w", p.what, ErrNoKey)
	}
	if p.pending != nil {
		// PROTOCOL §15 step 3: the pending key first, success promotes it.
		if out, k, _ := p.decrypt(p.pending, dst, pkt); k == kindNone {
			p.promote(p.pending)
			return out, nil
		}
		if p.alt != nil {
			if out, k, _ := p.decrypt(p.alt, dst, pkt); k == kindNone {
				p.promote(p.alt)
				return out, nil
			}
		}
		out, k, err := p.decrypt(p.cur, dst, pkt)
		if k != kindNone {
			return nil, wrapKind(p.what, k, err)
		}
		return out, nil
	}
	out, k, err := p.decrypt(p.cur, dst, pkt)
	if k == kindNone {
		return out, nil
	}
	if p.prev != nil {
		if out, k2, _ := p.decrypt(p.prev, dst, pkt); k2 == kindNone {
			return out, nil
		}
	}
	return nil, wrapKind(p.what, k, err)
}

// decrypt tries one key: its main form, then its bare twin if it still has
// one; the first form to authenticate a packet is kept for good.
func (p *rxPath) decrypt(c *rxCtx, dst, pkt []byte) ([]byte, errKind, error) {
	out, k, err := p.decryptWith(c.main, dst, pkt)
	if k == kindNone {
		c.bare = nil
		return out, k, err
	}
	if c.bare != nil {
		if out2, k2, err2 := p.decryptWith(c.bare, dst, pkt); k2 == kindNone {
			c.main, c.bare = c.bare, nil
			return out2, k2, err2
		}
	}
	return out, k, err
}

// decryptWith runs one context and classifies its error without allocating.
func (p *rxPath) decryptWith(c *srtp.Context, dst, pkt []byte) ([]byte, errKind, error) {
	p.replayed = false
	var out []byte
	var err error
	if p.isRTCP {
		out, err = c.DecryptRTCP(dst, pkt, &p.hdrRTCP)
	} else {
		out, err = c.DecryptRTP(dst, pkt, &p.hdrRTP)
		if err == nil {
			// Remember the stream so a later SetPendingRemote can carry its
			// rollover counter into the alternative pending context.
			p.lastSSRC, p.haveSSRC = p.hdrRTP.SSRC, true
		}
	}
	k := classify(err, p.replayed)
	p.replayed = false
	return out, k, err
}

func (p *rxPath) promote(c *rxCtx) {
	p.prev, p.cur = p.cur, c
	p.pending, p.alt = nil, nil
}

// expire ends the switch-over if its deadline has come (PROTOCOL §15 step 4).
func (p *rxPath) expire(now time.Time) {
	if p.transition && !now.Before(p.deadline) {
		p.finishSwitchOver()
	}
}

// finishSwitchOver applies PROTOCOL §15 step 4: the pending key replaces
// the old one regardless, and stragglers are no longer accepted under the
// old key.
func (p *rxPath) finishSwitchOver() {
	if p.pending != nil {
		p.cur = p.pending
	}
	p.pending, p.alt, p.prev = nil, nil, nil
	p.transition = false
}

package sdes

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

var fakeStart = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the injected clock: time moves only when the test says so.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// rekeyRig is one receiving Transport ("us") and the peer's sending
// Transport, plus counters to prove no packet is lost.
type rekeyRig struct {
	t         *testing.T
	clk       *fakeClock
	us, peer  *Transport
	ssrc      uint32
	seq       uint16
	sent, got int
}

func newRekeyRig(t *testing.T, s Suite) (*rekeyRig, Crypto) {
	t.Helper()
	clk := &fakeClock{t: fakeStart}
	k1 := mustKey(t, s)
	us, err := NewTransport(mustKey(t, s), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := us.SetRemote(k1); err != nil {
		t.Fatal(err)
	}
	peer, err := NewTransport(k1)
	if err != nil {
		t.Fatal(err)
	}
	return &rekeyRig{t: t, clk: clk, us: us, peer: peer, ssrc: 0x5eed, seq: 40000}, k1
}

// protect makes the peer's next packet (20 ms later) without delivering it.
func (r *rekeyRig) protect() (enc, clear []byte) {
	r.t.Helper()
	clear = rtpPacket(r.t, r.ssrc, r.seq, 160)
	r.seq++
	r.sent++
	enc, err := r.peer.ProtectRTP(nil, clear)
	if err != nil {
		r.t.Fatal(err)
	}
	return enc, clear
}

func (r *rekeyRig) deliver(enc, clear []byte) error {
	r.t.Helper()
	dec, err := r.us.UnprotectRTP(nil, enc)
	if err != nil {
		return err
	}
	if !bytes.Equal(dec, clear) {
		r.t.Fatal("decrypted packet differs")
	}
	r.got++
	return nil
}

// send protects and delivers n packets 20 ms apart, all of which must pass.
func (r *rekeyRig) send(n int) {
	r.t.Helper()
	for range n {
		r.clk.advance(20 * time.Millisecond)
		if err := r.deliver(r.protect()); err != nil {
			r.t.Fatalf("packet %d: %v", r.sent, err)
		}
	}
}

func (r *rekeyRig) rtcp(octets uint32) []byte {
	r.t.Helper()
	c, err := r.peer.ProtectRTCP(nil, rtcpPacket(r.t, r.ssrc, octets))
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func TestRekeyPeerSwitchesMidStream(t *testing.T) {
	for _, s := range OfferOrder {
		t.Run(s.String(), func(t *testing.T) {
			r, k1 := newRekeyRig(t, s)
			r.send(50)
			oldRTCP := r.rtcp(1)
			if _, err := r.us.UnprotectRTCP(nil, oldRTCP); err != nil {
				t.Fatal(err)
			}

			k2 := mustKey(t, s)
			if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
				t.Fatal(err)
			}
			if !r.us.Pending() {
				t.Fatal("Pending() false after SetPendingRemote")
			}
			if got, _ := r.us.Remote(); !sameKey(got, k2) {
				t.Fatal("Remote() is not the pending key")
			}
			// The peer has not switched yet: old-key packets still pass.
			r.send(20)
			// Three old-key packets still in flight when the peer switches.
			var stragglers [][2][]byte
			for range 3 {
				e, c := r.protect()
				stragglers = append(stragglers, [2][]byte{e, c})
			}
			oldRTCP2 := r.rtcp(2)
			if err := r.peer.Rekey(k2); err != nil {
				t.Fatal(err)
			}
			r.send(1) // first new-key packet promotes the pending key for SRTP
			if r.us.rtp.pending != nil || r.us.rtcp.pending == nil {
				t.Fatal("SRTP not promoted on first success, or SRTCP promoted with it")
			}
			for _, p := range stragglers { // reordered old-key packets still pass
				if err := r.deliver(p[0], p[1]); err != nil {
					t.Fatalf("old-key straggler after promotion: %v", err)
				}
			}
			// SRTCP switches on its own: old key still accepted, new promotes.
			if _, err := r.us.UnprotectRTCP(nil, oldRTCP2); err != nil {
				t.Fatalf("old-key SRTCP before SRTCP promotion: %v", err)
			}
			if _, err := r.us.UnprotectRTCP(nil, r.rtcp(3)); err != nil {
				t.Fatalf("new-key SRTCP: %v", err)
			}
			if r.us.Pending() {
				t.Fatal("still pending after both promotions")
			}
			r.send(300) // 6 s: past the deadline
			if r.got != r.sent {
				t.Fatalf("lost packets: sent %d, got %d", r.sent, r.got)
			}
			// After the deadline the old key is gone.
			old, err := NewTransport(k1)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := old.ProtectRTP(nil, rtpPacket(t, r.ssrc, r.seq, 160))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.us.UnprotectRTP(nil, enc); !errors.Is(err, ErrAuth) {
				t.Fatalf("old key after the deadline: %v, want ErrAuth", err)
			}
		})
	}
}

func TestRekeyOldKeyRejectedAfterDeadline(t *testing.T) {
	r, _ := newRekeyRig(t, SuiteAESCM128HMACSHA1_80)
	r.send(10)
	k2 := mustKey(t, SuiteAESCM128HMACSHA1_80)
	if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	// The peer never switches within the window: old key works until 5 s.
	for r.clk.Now().Before(fakeStart.Add(200*time.Millisecond + SwitchOver - 20*time.Millisecond)) {
		r.send(1)
	}
	if r.got != r.sent {
		t.Fatalf("old-key packets lost inside the window: sent %d got %d", r.sent, r.got)
	}
	r.clk.advance(20 * time.Millisecond) // now exactly at the deadline
	enc, clear := r.protect()
	if err := r.deliver(enc, clear); !errors.Is(err, ErrAuth) {
		t.Fatalf("old key at the deadline: %v, want ErrAuth (forced switch)", err)
	}
	if r.us.Pending() {
		t.Fatal("pending key not installed at the deadline")
	}
	if _, err := r.us.UnprotectRTCP(nil, r.rtcp(1)); !errors.Is(err, ErrAuth) {
		t.Fatalf("old-key SRTCP after the deadline: %v", err)
	}
	// The forced key works for both.
	if err := r.peer.Rekey(k2); err != nil {
		t.Fatal(err)
	}
	r.send(5)
	if _, err := r.us.UnprotectRTCP(nil, r.rtcp(2)); err != nil {
		t.Fatalf("new-key SRTCP after forced switch: %v", err)
	}
}

func TestRekeyDeadlineWithoutTraffic(t *testing.T) {
	r, _ := newRekeyRig(t, SuiteAEADAES256GCM)
	r.send(3)
	k2 := mustKey(t, SuiteAEADAES256GCM)
	if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	r.clk.advance(10 * time.Second)
	oldEnc, oldClear := r.protect()
	if err := r.peer.Rekey(k2); err != nil {
		t.Fatal(err)
	}
	r.send(3)
	if err := r.deliver(oldEnc, oldClear); !errors.Is(err, ErrAuth) {
		t.Fatalf("old key long after the deadline: %v", err)
	}
}

func TestRekeyStragglersEndAtDeadline(t *testing.T) {
	r, _ := newRekeyRig(t, SuiteAESCM128HMACSHA1_32)
	r.send(10)
	k2 := mustKey(t, SuiteAESCM128HMACSHA1_32)
	if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	late, lateClear := r.protect()
	if err := r.peer.Rekey(k2); err != nil {
		t.Fatal(err)
	}
	r.send(1) // promotes
	r.clk.advance(SwitchOver)
	if err := r.deliver(late, lateClear); !errors.Is(err, ErrAuth) {
		t.Fatalf("old-key straggler after the deadline: %v", err)
	}
}

func TestRekeySecondPendingReplacesFirst(t *testing.T) {
	r, _ := newRekeyRig(t, SuiteAESCM128HMACSHA1_80)
	r.send(5)
	k2, k3 := mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80)
	if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	r.send(5)
	if err := r.us.SetPendingRemote(k3, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	r.send(5) // old key still fine
	p2, _ := NewTransport(k2)
	enc, err := p2.ProtectRTP(nil, rtpPacket(t, r.ssrc, r.seq, 160))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.us.UnprotectRTP(nil, enc); !errors.Is(err, ErrAuth) {
		t.Fatalf("superseded pending key accepted: %v", err)
	}
	if err := r.peer.Rekey(k3); err != nil {
		t.Fatal(err)
	}
	r.send(5)
	if r.us.rtp.pending != nil {
		t.Fatal("k3 not promoted")
	}
}

// TestRekeyAfterWrapBothROCConventions: the peer's stream has wrapped
// (ROC 1) when it changes key. A peer that starts a fresh context (ROC 0)
// and one that keeps its ROC must both be accepted without loss.
func TestRekeyAfterWrapBothROCConventions(t *testing.T) {
	for _, keepROC := range []bool{false, true} {
		name := map[bool]string{false: "fresh context", true: "ROC carried"}[keepROC]
		t.Run(name, func(t *testing.T) {
			s := SuiteAESCM128HMACSHA1_80
			r, _ := newRekeyRig(t, s)
			r.seq = 65500
			r.send(100) // crosses 65535→0
			if roc, _ := r.us.rtp.cur.main.ROC(r.ssrc); roc != 1 {
				t.Fatalf("receiver ROC %d, want 1", roc)
			}
			k2 := mustKey(t, s)
			if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
				t.Fatal(err)
			}
			if keepROC {
				n := s.KeyLen()
				ctx, err := srtp.CreateContext(k2.Keys[0].KeySalt[:n], k2.Keys[0].KeySalt[n:], s.Profile())
				if err != nil {
					t.Fatal(err)
				}
				ctx.SetROC(r.ssrc, 1)
				for range 10 {
					clear := rtpPacket(t, r.ssrc, r.seq, 160)
					r.seq++
					r.sent++
					enc, err := ctx.EncryptRTP(nil, clear, nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := r.deliver(enc, clear); err != nil {
						t.Fatalf("ROC-carrying peer: %v", err)
					}
				}
			} else {
				if err := r.peer.Rekey(k2); err != nil {
					t.Fatal(err)
				}
				r.send(10)
			}
			if r.got != r.sent {
				t.Fatalf("sent %d got %d", r.sent, r.got)
			}
			if r.us.rtp.pending != nil {
				t.Fatal("not promoted")
			}
		})
	}
}

// TestOurRekeyIsImmediate: after Rekey our very next packet uses the new
// key; a peer that only knows the old key fails on it, one that installed
// it as pending accepts it, and our old-key packets in flight still pass.
func TestOurRekeyIsImmediate(t *testing.T) {
	s := SuiteAEADAES128GCM
	us, peer := pair(t, mustKey(t, s), mustKey(t, s))
	for seq := uint16(1); seq <= 10; seq++ {
		sendRTP(t, us, peer, 9, seq)
	}
	inflight, _ := us.ProtectRTP(nil, rtpPacket(t, 9, 11, 160))
	newKey := mustKey(t, s)
	if err := us.Rekey(newKey); err != nil {
		t.Fatal(err)
	}
	if !sameKey(us.Local(), newKey) {
		t.Fatal("Local() not updated")
	}
	first, _ := us.ProtectRTP(nil, rtpPacket(t, 9, 12, 160))
	first = bytes.Clone(first)
	// A receiver that knows only the old key cannot read it.
	oldOnly, _ := NewTransport(mustKey(t, s))
	if err := oldOnly.SetRemote(peerRemote(t, peer)); err != nil {
		t.Fatal(err)
	}
	if _, err := oldOnly.UnprotectRTP(nil, first); !errors.Is(err, ErrAuth) {
		t.Fatalf("new-key packet under the old key: %v", err)
	}
	if err := peer.SetPendingRemote(newKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.UnprotectRTP(nil, first); err != nil {
		t.Fatalf("new-key packet with pending key: %v", err)
	}
	if _, err := peer.UnprotectRTP(nil, inflight); err != nil {
		t.Fatalf("old-key packet in flight: %v", err)
	}
}

func peerRemote(t *testing.T, tr *Transport) Crypto {
	t.Helper()
	c, ok := tr.Remote()
	if !ok {
		t.Fatal("no remote")
	}
	return c
}

func TestSetPendingRemoteWithoutCurrentInstallsDirectly(t *testing.T) {
	us, err := NewTransport(mustKey(t, SuiteAESCM128HMACSHA1_80))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t, SuiteAESCM128HMACSHA1_80)
	if err := us.SetPendingRemote(k, fakeStart); err != nil {
		t.Fatal(err)
	}
	if us.Pending() {
		t.Fatal("first key left pending")
	}
	peer, _ := NewTransport(k)
	sendRTP(t, peer, us, 1, 1)
}

// TestRekeyExpiredPendingBecomesOldKey: a switch-over whose deadline passed
// with no packet is completed when the next rekey arrives, so the key the
// peer moved to in between stays accepted as the old key.
func TestRekeyExpiredPendingBecomesOldKey(t *testing.T) {
	s := SuiteAESCM128HMACSHA1_80
	r, _ := newRekeyRig(t, s)
	r.send(5)
	k2, k3 := mustKey(t, s), mustKey(t, s)
	if err := r.us.SetPendingRemote(k2, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	r.clk.advance(10 * time.Second) // silence through the whole window
	if err := r.us.SetPendingRemote(k3, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.peer.Rekey(k2); err != nil {
		t.Fatal(err)
	}
	r.send(5) // k2 is the old key of the new switch-over
	if err := r.peer.Rekey(k3); err != nil {
		t.Fatal(err)
	}
	r.send(5)
	if r.got != r.sent {
		t.Fatalf("sent %d got %d", r.sent, r.got)
	}
}

// TestSameKeyRenegotiationKeepsReplayWindow: a peer that answers our rekey offer with the key it
// already uses must not open a replay hole (D24): the contexts, their replay windows and the
// rollover counter carry on, so packets already seen stay replays, SRTP and SRTCP alike.
func TestSameKeyRenegotiationKeepsReplayWindow(t *testing.T) {
	for s := SuiteAESCM128HMACSHA1_80; s <= SuiteAEADAES256GCM; s++ {
		t.Run(s.String(), func(t *testing.T) {
			us, err := NewTransport(mustKey(t, s))
			if err != nil {
				t.Fatal(err)
			}
			k := mustKey(t, s)
			if err := us.SetRemote(k); err != nil {
				t.Fatal(err)
			}
			peer, _ := NewTransport(k)
			rtpEnc, err := peer.ProtectRTP(nil, rtpPacket(t, 7, 65535, 160)) // next one wraps the ROC
			if err != nil {
				t.Fatal(err)
			}
			rtcpEnc, err := peer.ProtectRTCP(nil, rtcpPacket(t, 7, 160))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := us.UnprotectRTP(nil, rtpEnc); err != nil {
				t.Fatal(err)
			}
			if _, err := us.UnprotectRTCP(nil, rtcpEnc); err != nil {
				t.Fatal(err)
			}
			wrapped, _ := peer.ProtectRTP(nil, rtpPacket(t, 7, 0, 160))
			if _, err := us.UnprotectRTP(nil, wrapped); err != nil {
				t.Fatal(err)
			}
			for i, renegotiate := range []func() error{
				func() error { return us.SetPendingRemote(k, fakeStart) },
				func() error { return us.SetRemote(k) },
			} {
				if err := renegotiate(); err != nil {
					t.Fatal(err)
				}
				if us.Pending() {
					t.Fatal("the same key was left pending")
				}
				if _, err := us.UnprotectRTP(nil, rtpEnc); !errors.Is(err, ErrReplay) {
					t.Fatalf("replayed SRTP after renegotiating the same key: %v, want ErrReplay", err)
				}
				if _, err := us.UnprotectRTCP(nil, rtcpEnc); !errors.Is(err, ErrReplay) {
					t.Fatalf("replayed SRTCP after renegotiating the same key: %v, want ErrReplay", err)
				}
				// The rollover counter carried on: the stream continues after the wrap.
				next, _ := peer.ProtectRTP(nil, rtpPacket(t, 7, uint16(1+i), 160))
				if _, err := us.UnprotectRTP(nil, next); err != nil {
					t.Fatalf("stream after the wrap: %v", err)
				}
			}
		})
	}
}

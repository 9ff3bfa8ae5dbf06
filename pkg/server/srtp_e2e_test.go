package server_test

// End-to-end tests of SDES-SRTP on plain RTP legs (PROTOCOL.md §13, §15, §29, issue 5) against
// the real server. The SRTP peer here is deliberately independent of rtpbridge's pkg/sdes: it
// parses a=crypto lines itself and runs its own pion/srtp contexts, keyed by what the SDP says.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// ---------------------------------------------------------------------------------------------
// Suites, keys and SDP text, written independently of pkg/sdes.

// srtpSuite is an SDES crypto-suite as the test peer knows it (RFC 4568 §6.2, RFC 7714 §14.2).
type srtpSuite struct {
	name            string
	profile         srtp.ProtectionProfile
	keyLen, saltLen int
	aead            bool
}

// srtpSuites is PROTOCOL.md §29's offer order.
var srtpSuites = []srtpSuite{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14, false},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14, false},
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12, true},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12, true},
}

func srtpSuiteNamed(t testing.TB, name string) srtpSuite {
	t.Helper()
	for _, s := range srtpSuites {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("unknown suite %q", name)
	return srtpSuite{}
}

func (s srtpSuite) materialLen() int { return s.keyLen + s.saltLen }

// newKey returns fresh random key ‖ salt for the suite.
func (s srtpSuite) newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, s.materialLen())
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// context makes a pion context from key ‖ salt.
func (s srtpSuite) context(t testing.TB, material []byte, opts ...srtp.ContextOption) *srtp.Context {
	t.Helper()
	if len(material) != s.materialLen() {
		t.Fatalf("%s key material is %d bytes, want %d", s.name, len(material), s.materialLen())
	}
	ctx, err := srtp.CreateContext(material[:s.keyLen], material[s.keyLen:], s.profile, opts...)
	if err != nil {
		t.Fatalf("srtp context for %s: %v", s.name, err)
	}
	return ctx
}

// srtcpEOffset is where the byte holding the SRTCP E flag sits in a protected packet of n bytes:
// before the 80-bit tag for AES-CM (RFC 3711 §3.4), last for AEAD (RFC 7714 §9.1).
func (s srtpSuite) srtcpEOffset(n int) int {
	if s.aead {
		return n - 4
	}
	return n - 10 - 4
}

func srtpB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// srtpCryptoLine formats an a=crypto line.
func srtpCryptoLine(tag int, s srtpSuite, material []byte) string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s", tag, s.name, srtpB64(material))
}

var srtpPCMU = []string{"0 PCMU/8000", "101 telephone-event/8000"}

func srtpSDPLines(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// srtpMLine returns port, profile and formats of the m=audio line.
func srtpMLine(t testing.TB, sdp string) (int, string, []string) {
	t.Helper()
	for _, l := range srtpSDPLines(sdp) {
		if !strings.HasPrefix(l, "m=audio ") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(l, "m=audio "))
		if len(f) < 3 {
			t.Fatalf("short m= line %q", l)
		}
		port, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("m= line %q: %v", l, err)
		}
		return port, f[1], f[2:]
	}
	t.Fatalf("no m=audio line in\n%s", sdp)
	return 0, "", nil
}

// srtpOrigin returns the session id and version of the o= line.
func srtpOrigin(t testing.TB, sdp string) (string, uint64) {
	t.Helper()
	for _, l := range srtpSDPLines(sdp) {
		if strings.HasPrefix(l, "o=") {
			f := strings.Fields(l)
			if len(f) != 6 {
				t.Fatalf("bad o= line %q", l)
			}
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("o= version in %q: %v", l, err)
			}
			return f[1], v
		}
	}
	t.Fatalf("no o= line in\n%s", sdp)
	return "", 0
}

// srtpAttr is a parsed a=crypto line of rtpbridge's SDP.
type srtpAttr struct {
	tag   int
	suite string
	key   []byte
	line  string
}

// srtpCryptos parses every a=crypto line strictly: rtpbridge writes "<tag> <suite>
// inline:<padded base64>" and nothing else (no lifetime, MKI or session parameters).
func srtpCryptos(t testing.TB, sdp string) []srtpAttr {
	t.Helper()
	var out []srtpAttr
	for _, l := range srtpSDPLines(sdp) {
		v, ok := strings.CutPrefix(l, "a=crypto:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 3 || !strings.HasPrefix(f[2], "inline:") {
			t.Fatalf("crypto line %q: want <tag> <suite> inline:<key>", l)
		}
		tag, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("crypto line %q: tag: %v", l, err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "inline:"))
		if err != nil {
			t.Fatalf("crypto line %q: key is not padded standard base64: %v", l, err)
		}
		s := srtpSuiteNamed(t, f[1])
		if len(key) != s.materialLen() {
			t.Fatalf("crypto line %q: key is %d bytes, %s needs %d", l, len(key), s.name, s.materialLen())
		}
		out = append(out, srtpAttr{tag: tag, suite: f[1], key: key, line: l})
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// The SRTP test peer.

type srtpRaw struct {
	b  []byte
	at time.Time
}

// srtpPeer is an SDES-SRTP endpoint on an even/odd UDP pair of 127.0.0.1. Received datagrams
// are kept raw (RTCP-range ones on either socket go to rtcpIn) so the test decrypts them with
// whichever key it expects. Contexts are used from one goroutine at a time.
type srtpPeer struct {
	t                 testing.TB
	suite             srtpSuite
	rtpConn, rtcpConn *net.UDPConn
	rtpIn, rtcpIn     chan srtpRaw

	mu         sync.Mutex
	remote     *net.UDPAddr
	rtcpRemote *net.UDPAddr

	txKey []byte        // the key this peer signals and sends with
	tx    *srtp.Context // its context
	rx    *srtp.Context // rtpbridge's key, set from rtpbridge's SDP
	rxKey []byte
}

func newSRTPPeer(t testing.TB, s srtpSuite) *srtpPeer {
	t.Helper()
	rtpConn, rtcpConn := rtppeer.ListenPair(t)
	p := &srtpPeer{
		t: t, suite: s, rtpConn: rtpConn, rtcpConn: rtcpConn,
		rtpIn: make(chan srtpRaw, 4096), rtcpIn: make(chan srtpRaw, 256),
	}
	p.txKey = s.newKey(t)
	p.tx = s.context(t, p.txKey)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.read(rtpConn, false) }()
	go func() { defer wg.Done(); p.read(rtcpConn, true) }()
	t.Cleanup(func() { rtpConn.Close(); rtcpConn.Close(); wg.Wait() })
	return p
}

func (p *srtpPeer) read(conn *net.UDPConn, rtcpSocket bool) {
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r := srtpRaw{b: append([]byte(nil), buf[:n]...), at: time.Now()}
		ch := p.rtpIn
		if rtcpSocket || (n >= 2 && buf[1] >= 200 && buf[1] <= 204) {
			ch = p.rtcpIn
		}
		select {
		case ch <- r:
		default:
		}
	}
}

func (p *srtpPeer) port() int { return p.rtpConn.LocalAddr().(*net.UDPAddr).Port }

// cryptoLine is this peer's a=crypto line with its own key.
func (p *srtpPeer) cryptoLine(tag int) string { return srtpCryptoLine(tag, p.suite, p.txKey) }

// offer is an offer with this peer's key under tag 1.
func (p *srtpPeer) offer(profile string, extra ...string) string {
	return rtppeer.SDP(p.port(), profile, srtpPCMU, append([]string{p.cryptoLine(1)}, extra...)...)
}

// target points RTP at the m= port of rtpbridge's SDP and RTCP at port + 1 (we never offer
// rtcp-mux, and rtpbridge sends RTCP from its odd socket).
func (p *srtpPeer) target(sdp string) {
	p.t.Helper()
	port, _, _ := srtpMLine(p.t, sdp)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	p.rtcpRemote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1}
}

func (p *srtpPeer) setRX(material []byte) {
	p.rxKey = material
	p.rx = p.suite.context(p.t, material)
}

// protect builds and encrypts one RTP packet with ctx.
func (p *srtpPeer) protect(ctx *srtp.Context, h rtp.Header, payload []byte) []byte {
	p.t.Helper()
	b, err := srtpProtectRTP(ctx, h, payload)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func srtpProtectRTP(ctx *srtp.Context, h rtp.Header, payload []byte) ([]byte, error) {
	h.Version = 2
	clear, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		return nil, err
	}
	return ctx.EncryptRTP(nil, clear, nil)
}

// sendRaw writes a datagram to rtpbridge's RTP port.
func (p *srtpPeer) sendRaw(b []byte) {
	p.t.Helper()
	p.mu.Lock()
	to := p.remote
	p.mu.Unlock()
	if _, err := p.rtpConn.WriteToUDP(b, to); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// sendRTCP protects a compound with ctx (nil: send it in clear) and writes it to rtpbridge's
// RTCP port from the odd socket.
func (p *srtpPeer) sendRTCP(ctx *srtp.Context, pkts ...rtcp.Packet) {
	p.t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		p.t.Fatal(err)
	}
	if ctx != nil {
		if b, err = ctx.EncryptRTCP(nil, b, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	p.mu.Lock()
	to := p.rtcpRemote
	p.mu.Unlock()
	if _, err := p.rtcpConn.WriteToUDP(b, to); err != nil {
		p.t.Fatalf("send rtcp: %v", err)
	}
}

// stream sends n packets encrypted with the peer's key, sequence/timestamp continuing from h,
// and returns the header for the next packet. Unpaced: loopback and the session keep up with
// the few dozen packets the tests send this way.
func (p *srtpPeer) stream(h rtp.Header, n int, gen func(i int) []byte) (rtp.Header, [][]byte) {
	p.t.Helper()
	var raws [][]byte
	for i := 0; i < n; i++ {
		b := p.protect(p.tx, h, gen(i))
		raws = append(raws, b)
		p.sendRaw(b)
		h.SequenceNumber++
		h.Timestamp += 160
		h.Marker = false
	}
	return h, raws
}

// collect gathers raw RTP datagrams until n have arrived or timeout passes.
func (p *srtpPeer) collect(n int, timeout time.Duration) []srtpRaw {
	return rtppeer.Receive(p.rtpIn, n, timeout)
}

// srtpDecrypt authenticates and decrypts one SRTP packet.
func srtpDecrypt(ctx *srtp.Context, raw []byte) (rtppeer.Packet, error) {
	clear, err := ctx.DecryptRTP(nil, raw, nil)
	if err != nil {
		return rtppeer.Packet{}, err
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(clear); err != nil {
		return rtppeer.Packet{}, err
	}
	return rtppeer.Packet{Header: pkt.Header, Payload: pkt.Payload}, nil
}

// decryptAll decrypts every datagram with the peer's receive context, failing on any error.
func (p *srtpPeer) decryptAll(raws []srtpRaw) []rtppeer.Packet {
	p.t.Helper()
	var out []rtppeer.Packet
	for i, r := range raws {
		pkt, err := srtpDecrypt(p.rx, r.b)
		if err != nil {
			p.t.Fatalf("packet %d from rtpbridge (%d bytes) does not decrypt with rtpbridge's signalled %s key: %v", i, len(r.b), p.suite.name, err)
		}
		out = append(out, pkt)
	}
	return out
}

// srtpPatterns returns n distinct 160-byte payloads.
func srtpPatterns(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rtppeer.Pattern(i, 160)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Legs.

// srtpLegFromOffer: the SRTP peer offers with profile, rtpbridge answers; the answer is checked
// against PROTOCOL.md §13.2/§15: wantProfile, one a=crypto with the offer's tag and suite and a
// key of rtpbridge's own.
func srtpLegFromOffer(t testing.TB, c *testserver.Client, s srtpSuite, profile, wantProfile string) (string, string, *srtpPeer) {
	t.Helper()
	p := newSRTPPeer(t, s)
	id, answer := srtpAnswerOffer(t, c, p, p.offer(profile), wantProfile, 1, s)
	return id, answer, p
}

// srtpAnswerOffer hands the peer's offer to rtpbridge, checks the answer (wantProfile, one
// a=crypto with wantTag and suite, a key of rtpbridge's own) and points the peer at it.
func srtpAnswerOffer(t testing.TB, c *testserver.Client, p *srtpPeer, offer, wantProfile string, wantTag int, suite srtpSuite) (id, answer string) {
	t.Helper()
	var res struct {
		EndpointID string `json:"endpoint_id"`
		SDPAnswer  string `json:"sdp_answer"`
	}
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": offer}, &res)
	srtpCheckAnswer(t, res.SDPAnswer, wantProfile, wantTag, suite, p.txKey)
	p.setRX(srtpCryptos(t, res.SDPAnswer)[0].key)
	p.target(res.SDPAnswer)
	return res.EndpointID, res.SDPAnswer
}

func srtpCheckAnswer(t testing.TB, answer, wantProfile string, wantTag int, s srtpSuite, peerKey []byte) {
	t.Helper()
	_, profile, _ := srtpMLine(t, answer)
	if profile != wantProfile {
		t.Fatalf("answer profile %s, want %s:\n%s", profile, wantProfile, answer)
	}
	cr := srtpCryptos(t, answer)
	if len(cr) != 1 {
		t.Fatalf("answer has %d a=crypto lines, want 1:\n%s", len(cr), answer)
	}
	if cr[0].tag != wantTag || cr[0].suite != s.name {
		t.Fatalf("answer crypto %q, want tag %d suite %s", cr[0].line, wantTag, s.name)
	}
	if bytes.Equal(cr[0].key, peerKey) {
		t.Fatalf("rtpbridge answered with the offerer's own key (PROTOCOL.md §15: keys must differ)")
	}
}

// srtpPlainLeg is a plain RTP leg (rtppeer) from a PCMU offer.
func srtpPlainLeg(t *testing.T, c *testserver.Client) *leg {
	t.Helper()
	return legFromOffer(t, c, "sendrecv", srtpPCMU...)
}

// srtpCheckSRTPToPlain sends n packets from the SRTP peer and checks they arrive byte-identical
// on the plain leg.
func srtpCheckSRTPToPlain(t *testing.T, sp *srtpPeer, plain *rtppeer.Peer, ssrc uint32, seq uint16) {
	t.Helper()
	const n = 30
	want := srtpPatterns(n)
	sp.stream(rtp.Header{PayloadType: 0, SequenceNumber: seq, Timestamp: 1000, SSRC: ssrc}, n, func(i int) []byte { return want[i] })
	checkStream(t, plain.Collect(n, wait), want, 0, 160)
}

// srtpCheckPlainToSRTP sends n plain packets and checks the SRTP peer decrypts them
// byte-identical with rtpbridge's signalled key.
func srtpCheckPlainToSRTP(t *testing.T, plain *rtppeer.Peer, sp *srtpPeer, ssrc uint32) {
	t.Helper()
	const n = 30
	want := srtpPatterns(n)
	plain.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 7, Timestamp: 99, SSRC: ssrc}, n, 160, true, func(i int) []byte { return want[i] })
	checkStream(t, sp.decryptAll(sp.collect(n, wait)), want, 0, 160)
}

// srtpCheckSRTPToSRTP: from one SRTP peer to the other, decrypted at the far end.
func srtpCheckSRTPToSRTP(t *testing.T, from, to *srtpPeer, ssrc uint32) {
	t.Helper()
	const n = 30
	want := srtpPatterns(n)
	from.stream(rtp.Header{PayloadType: 0, SequenceNumber: 500, Timestamp: 12345, SSRC: ssrc}, n, func(i int) []byte { return want[i] })
	checkStream(t, to.decryptAll(to.collect(n, wait)), want, 0, 160)
}

func srtpMetric(t testing.TB, srv *testserver.Server, name string) float64 {
	t.Helper()
	return srv.MetricValue(t, name)
}

// srtpWaitMetric waits until the metric equals want, then checks it stays there a moment (so a
// late extra increment is caught too).
func srtpWaitMetric(t testing.TB, srv *testserver.Server, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v := srv.MetricValue(t, name)
		if v == want {
			break
		}
		if v > want || time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if v := srv.MetricValue(t, name); v != want {
		t.Fatalf("%s = %v after settling, want %v", name, v, want)
	}
}

// srtpOwnOffer makes rtpbridge offer SRTP (create_offer srtp:true, PCMU) and checks the offer
// against PROTOCOL.md §13.3/§29: RTP/SAVP, the four suites in order with tags 1..4, distinct
// keys.
func srtpOwnOffer(t testing.TB, c *testserver.Client) (string, string, []srtpAttr) {
	t.Helper()
	var res struct {
		EndpointID string `json:"endpoint_id"`
		SDPOffer   string `json:"sdp_offer"`
	}
	c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "srtp": true, "codecs": []string{"PCMU"}}, &res)
	if _, profile, _ := srtpMLine(t, res.SDPOffer); profile != "RTP/SAVP" {
		t.Fatalf("SRTP offer profile %s, want RTP/SAVP:\n%s", profile, res.SDPOffer)
	}
	cr := srtpCryptos(t, res.SDPOffer)
	if len(cr) != len(srtpSuites) {
		t.Fatalf("SRTP offer has %d a=crypto lines, want %d:\n%s", len(cr), len(srtpSuites), res.SDPOffer)
	}
	for i, a := range cr {
		if a.tag != i+1 || a.suite != srtpSuites[i].name {
			t.Fatalf("offer crypto %d is %q, want tag %d %s (PROTOCOL.md §29 order)", i, a.line, i+1, srtpSuites[i].name)
		}
		for _, b := range cr[:i] {
			if bytes.Equal(a.key[:16], b.key[:16]) {
				t.Fatalf("offer reuses key material between tags %d and %d", b.tag, a.tag)
			}
		}
	}
	return res.EndpointID, res.SDPOffer, cr
}

// ---------------------------------------------------------------------------------------------
// 1. Suites, SRTP ↔ plain, SRTP ↔ SRTP, SAVPF, opportunistic SRTP.

func TestSRTPSuitesWithPlainLeg(t *testing.T) {
	for _, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			_, _, sp := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
			plain := srtpPlainLeg(t, c)

			srtpCheckSRTPToPlain(t, sp, plain.peer, 0x51, 100)
			srtpCheckPlainToSRTP(t, plain.peer, sp, 0x52)
			if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
				t.Errorf("rtpbridge_srtp_errors_total = %v, want 0", v)
			}
			if v := srtpMetric(t, srv, "rtpbridge_packets_routed_total"); v != 60 {
				t.Errorf("rtpbridge_packets_routed_total = %v, want 60", v)
			}
		})
	}
}

func TestSRTPSuitesSRTPToSRTP(t *testing.T) {
	for i, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			// Leg A from the peer's offer.
			_, _, a := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
			// Leg B from rtpbridge's own offer; the peer picks suite s under its tag.
			bID, offer, cr := srtpOwnOffer(t, c)
			b := newSRTPPeer(t, s)
			b.setRX(cr[i].key)
			b.target(offer)
			answer := rtppeer.SDP(b.port(), "RTP/SAVP", srtpPCMU, b.cryptoLine(cr[i].tag))
			c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": bID, "sdp": answer}, nil)

			srtpCheckSRTPToSRTP(t, a, b, 0xa1)
			srtpCheckSRTPToSRTP(t, b, a, 0xb1)
			if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
				t.Errorf("rtpbridge_srtp_errors_total = %v, want 0", v)
			}
		})
	}
}

func TestSRTPSAVPFOfferAnsweredSAVPF(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	_, _, sp := srtpLegFromOffer(t, c, srtpSuites[0], "RTP/SAVPF", "RTP/SAVPF")
	plain := srtpPlainLeg(t, c)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x61, 1)
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x62)
}

// RTP/AVP with a=crypto is treated as SRTP (PROTOCOL.md §13.1) and answered RTP/SAVP (§13.2).
func TestSRTPOpportunisticAVPOffer(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	_, _, sp := srtpLegFromOffer(t, c, srtpSuites[0], "RTP/AVP", "RTP/SAVP")
	plain := srtpPlainLeg(t, c)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x71, 1)
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x72)
	// It really is SRTP: a clear RTP packet from the peer is rejected, not routed.
	clear, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 900, SSRC: 0x71}, Payload: make([]byte, 160)}).Marshal()
	sp.sendRaw(clear)
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 1)
	plain.peer.ExpectNone(200 * time.Millisecond)
}

// The answer takes the first offered suite rtpbridge supports, with that line's tag (§29).
func TestSRTPAnswerPicksFirstSupportedSuite(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	gcm := srtpSuiteNamed(t, "AEAD_AES_128_GCM")
	sp := newSRTPPeer(t, gcm)
	other := srtpSuites[0].newKey(t)
	offer := rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU,
		"a=crypto:3 F8_128_HMAC_SHA1_80 inline:"+srtpB64(other),
		sp.cryptoLine(7),
		srtpCryptoLine(9, srtpSuites[0], other))
	srtpAnswerOffer(t, c, sp, offer, "RTP/SAVP", 7, gcm)
	plain := srtpPlainLeg(t, c)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x81, 1)
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x82)
}

// ---------------------------------------------------------------------------------------------
// 2. SRTCP both ways.

func TestSRTPSRTCPReportsAndBye(t *testing.T) {
	for _, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			id, _, sp := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
			plain := srtpPlainLeg(t, c)

			// Media both ways: rtpbridge learns the peer's SSRC, the peer learns rtpbridge's.
			plain.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 0x99}, 3, 160, true, func(i int) []byte { return rtppeer.Pattern(i, 160) })
			got := sp.decryptAll(sp.collect(3, wait))
			if len(got) != 3 {
				t.Fatalf("peer received %d packets", len(got))
			}
			ourSSRC := got[0].Header.SSRC
			const peerSSRC = 0x5eed
			sp.stream(rtp.Header{PayloadType: 0, SSRC: peerSSRC, SequenceNumber: 10}, 5, func(i int) []byte { return rtppeer.Pattern(i, 160) })
			if n := len(plain.peer.Collect(5, wait)); n != 5 {
				t.Fatalf("plain leg received %d of 5", n)
			}

			// rtpbridge's SR arrives SRTCP-protected under rtpbridge's key.
			var sr *rtcp.SenderReport
			deadline := time.After(8 * time.Second)
			for sr == nil {
				select {
				case r := <-sp.rtcpIn:
					clear, err := sp.rx.DecryptRTCP(nil, r.b, nil)
					if err != nil {
						t.Fatalf("RTCP from rtpbridge (%d bytes) does not decrypt with its %s key: %v", len(r.b), s.name, err)
					}
					if off := s.srtcpEOffset(len(r.b)); r.b[off]&0x80 == 0 {
						t.Fatalf("SRTCP E flag not set (PROTOCOL.md §15)")
					}
					if bytes.Equal(r.b[8:len(clear)], clear[8:]) {
						t.Fatalf("SRTCP body was sent in clear")
					}
					pkts, err := rtcp.Unmarshal(clear)
					if err != nil {
						t.Fatalf("decrypted RTCP: %v", err)
					}
					for _, p := range pkts {
						if x, ok := p.(*rtcp.SenderReport); ok {
							sr = x
						}
					}
				case <-deadline:
					t.Fatal("no SRTCP sender report from rtpbridge")
				}
			}
			if sr.SSRC != ourSSRC || len(sr.Reports) != 1 || sr.Reports[0].SSRC != peerSSRC {
				t.Fatalf("SR ssrc %x (want %x), report blocks %+v (want one on %x)", sr.SSRC, ourSSRC, sr.Reports, peerSSRC)
			}

			// Clear RTCP and SRTCP under a key nobody signalled are dropped and counted.
			wrong := s.context(t, s.newKey(t))
			sp.sendRTCP(nil, &rtcp.Goodbye{Sources: []uint32{peerSSRC}, Reason: "clear"})
			sp.sendRTCP(wrong, &rtcp.Goodbye{Sources: []uint32{peerSSRC}, Reason: "wrong key"})
			srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 2)

			// An SRTCP RR + BYE under the peer's key is accepted.
			sp.sendRTCP(sp.tx,
				&rtcp.ReceiverReport{SSRC: peerSSRC, Reports: []rtcp.ReceptionReport{{SSRC: sr.SSRC, LastSenderReport: rtppeer.NTPMiddle(sr.NTPTime)}}},
				&rtcp.Goodbye{Sources: []uint32{peerSSRC}, Reason: "srtcp bye"})
			ev := c.WaitEvent(protocol.EventRTCPBye, wait)
			if want := fmt.Sprintf(`{"endpoint_id":%q,"reason":"srtcp bye","ssrc_list":[%d]}`, id, peerSSRC); string(ev.Data) != want {
				t.Fatalf("rtcp_bye = %s, want %s", ev.Data, want)
			}
			if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 2 {
				t.Fatalf("rtpbridge_srtp_errors_total = %v, want 2", v)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 3. Wrong key, tampering, clear RTP, replay.

func TestSRTPWrongKeyAndReplayDropped(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	s := srtpSuites[0]
	_, _, sp := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
	plain := srtpPlainLeg(t, c)
	const ssrc = 0x4242
	gen := func(i int) []byte { return rtppeer.Pattern(i, 160) }

	// From another address, within the learning window: a packet stream under a key that was
	// never signalled. It must neither be routed nor steal the leg's remote address.
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	wrong := s.context(t, s.newKey(t))
	sp.mu.Lock()
	dst := sp.remote
	sp.mu.Unlock()
	h := rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: ssrc}
	for i := 0; i < 10; i++ {
		if _, err := attacker.WriteToUDP(sp.protect(wrong, h, gen(i)), dst); err != nil {
			t.Fatal(err)
		}
		h.SequenceNumber++
		h.Timestamp += 160
	}
	// The right peer encrypting with a key other than the one it signalled.
	for i := 0; i < 5; i++ {
		sp.sendRaw(sp.protect(wrong, h, gen(i)))
		h.SequenceNumber++
		h.Timestamp += 160
	}
	// Clear RTP on an SRTP leg.
	for i := 0; i < 3; i++ {
		clear, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: h.SequenceNumber, Timestamp: h.Timestamp, SSRC: ssrc}, Payload: gen(i)}).Marshal()
		sp.sendRaw(clear)
		h.SequenceNumber++
		h.Timestamp += 160
	}
	// Valid packets with one flipped bit in the payload or in the tag.
	for i := 0; i < 2; i++ {
		b := sp.protect(sp.tx, h, gen(i))
		b[20+i*(len(b)-21)] ^= 0x01
		sp.sendRaw(b)
		h.SequenceNumber++
		h.Timestamp += 160
	}
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 20)
	plain.peer.ExpectNone(200 * time.Millisecond)
	if v := srtpMetric(t, srv, "rtpbridge_packets_routed_total"); v != 0 {
		t.Fatalf("rtpbridge_packets_routed_total = %v after rejected packets, want 0", v)
	}
	// rtpbridge still sends to the signalled peer, not to the attacker.
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x77)
	attacker.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := attacker.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Fatalf("rtpbridge sent a %d-byte datagram to the address of the wrong-key packets", n)
	}

	// Valid packets flow (sequence numbers continue past the rejected ones).
	want := srtpPatterns(10)
	var raws [][]byte
	h, raws = sp.stream(h, 10, func(i int) []byte { return want[i] })
	checkStream(t, plain.peer.Collect(10, wait), want, 0, 160)
	srtpWaitMetric(t, srv, "rtpbridge_packets_routed_total", 40)

	// Replays of those exact datagrams are dropped and counted.
	for _, b := range raws {
		sp.sendRaw(b)
	}
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 30)
	plain.peer.ExpectNone(200 * time.Millisecond)
	if v := srtpMetric(t, srv, "rtpbridge_packets_routed_total"); v != 40 {
		t.Fatalf("rtpbridge_packets_routed_total = %v after replays, want 40", v)
	}

	// The call goes on.
	want2 := srtpPatterns(10)
	sp.stream(h, 10, func(i int) []byte { return want2[i] })
	got := plain.peer.Collect(10, wait)
	checkStream(t, got, want2, 0, 160)
	srtpWaitMetric(t, srv, "rtpbridge_packets_routed_total", 50)
	if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 30 {
		t.Fatalf("rtpbridge_srtp_errors_total = %v, want 30", v)
	}
}

// ---------------------------------------------------------------------------------------------
// 4. Rekey mid-stream (PROTOCOL.md §15).

func TestSRTPRekeyMidStream(t *testing.T) {
	for _, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			srtpRekeyMidStream(t, s)
		})
	}
}

func srtpRekeyMidStream(t *testing.T, s srtpSuite) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	aID, answer, sp := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
	plain := srtpPlainLeg(t, c)
	oldRX, oldRXKey := sp.rx, sp.rxKey
	aPort, _, _ := srtpMLine(t, answer)
	sessID, version := srtpOrigin(t, answer)
	sp.mu.Lock()
	aAddr := sp.remote
	sp.mu.Unlock()
	bAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, plain.sdp)}

	// Both peers stream continuously at 20 ms. The SRTP peer's sending context can be switched
	// by the test; every packet remembers which key it went out under.
	var (
		mu       sync.Mutex
		txCtx    = sp.tx
		txKeyID  = 1
		sentA    [][]byte
		keysA    []int
		sentB    [][]byte
		sendErrs []error
	)
	hA := rtp.Header{PayloadType: 0, SequenceNumber: 1000, Timestamp: 0, SSRC: 0xa0a0}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	pace := func(start time.Time, i int) bool {
		select {
		case <-stop:
			return false
		case <-time.After(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond))):
			return true
		}
	}
	wg.Add(2)
	go func() { // SRTP peer → rtpbridge
		defer wg.Done()
		start := time.Now()
		for i := 0; ; i++ {
			payload := rtppeer.Pattern(i, 160)
			mu.Lock()
			b, err := srtpProtectRTP(txCtx, hA, payload)
			if err == nil {
				sentA = append(sentA, payload)
				keysA = append(keysA, txKeyID)
				_, err = sp.rtpConn.WriteToUDP(b, aAddr)
			}
			if err != nil {
				sendErrs = append(sendErrs, err)
			}
			mu.Unlock()
			if err != nil {
				return
			}
			hA.SequenceNumber++
			hA.Timestamp += 160
			if !pace(start, i) {
				return
			}
		}
	}()
	go func() { // plain peer → rtpbridge → SRTP peer
		defer wg.Done()
		start := time.Now()
		h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 3000, Timestamp: 500, SSRC: 0xb0b0}
		for i := 0; ; i++ {
			payload := rtppeer.Pattern(10000+i, 160)
			b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
			if err == nil {
				_, err = plain.peer.RTP.WriteToUDP(b, bAddr)
			}
			mu.Lock()
			if err != nil {
				sendErrs = append(sendErrs, err)
			} else {
				sentB = append(sentB, payload)
			}
			mu.Unlock()
			if err != nil {
				return
			}
			h.SequenceNumber++
			h.Timestamp += 160
			if !pace(start, i) {
				return
			}
		}
	}()
	stopped := false
	stopStreams := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopStreams()

	time.Sleep(time.Second)

	// (1) srtp_rekey: a new offer with a new send key, used at once.
	var rk struct {
		SDP string `json:"sdp"`
	}
	tR0 := time.Now()
	c.MustCall("endpoint.srtp_rekey", map[string]any{"endpoint_id": aID}, &rk)
	tR := time.Now()
	port, profile, formats := srtpMLine(t, rk.SDP)
	if port != aPort || profile != "RTP/SAVP" || len(formats) == 0 || formats[0] != "0" || !strings.Contains(rk.SDP, "a=rtpmap:0 PCMU/8000") {
		t.Errorf("re-offer m= port %d profile %s formats %v (want port %d, RTP/SAVP, PCMU at 0 first):\n%s", port, profile, formats, aPort, rk.SDP)
	}
	if sid, v := srtpOrigin(t, rk.SDP); sid != sessID || v != version+1 {
		t.Errorf("re-offer o= %s %d, want %s %d", sid, v, sessID, version+1)
	}
	cr := srtpCryptos(t, rk.SDP)
	if len(cr) != 1 || cr[0].tag != 1 || cr[0].suite != s.name {
		t.Fatalf("re-offer crypto %+v, want one line, tag 1, %s:\n%s", cr, s.name, rk.SDP)
	}
	if bytes.Equal(cr[0].key, oldRXKey) || bytes.Equal(cr[0].key, sp.txKey) {
		t.Fatalf("re-offer key is not new")
	}
	newRX := s.context(t, cr[0].key)

	// The peer keeps sending under its old key: rtpbridge's receive key is unchanged.
	time.Sleep(time.Second)

	// (2) The peer answers with a new key of its own; rtpbridge installs it as pending.
	newKey := s.newKey(t)
	reAnswer := rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU, srtpCryptoLine(1, s, newKey))
	tA0 := time.Now()
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": aID, "sdp": reAnswer}, nil)
	tA := time.Now()
	mu.Lock()
	sentAtAnswer := len(sentA)
	mu.Unlock()

	// (3) For a while the peer still sends under the old key, then switches.
	time.Sleep(time.Second)
	newTX := s.context(t, newKey)
	mu.Lock()
	oldTX := txCtx
	txCtx, txKeyID = newTX, 2
	mu.Unlock()

	// (4) Stream on until well past the forced switch-over deadline.
	time.Sleep(time.Until(tA.Add(5*time.Second + 500*time.Millisecond)))
	stopStreams()
	if len(sendErrs) > 0 {
		t.Fatalf("send errors: %v", sendErrs)
	}
	t.Logf("rekey at %v, answer at %v, peer switch at +1 s; sent %d packets each way", tR.Sub(tR0), tA.Sub(tA0), len(sentA))

	// SRTP peer → plain: no packet lost, old key before the switch, new key after.
	oldAfterAnswer := 0
	for _, k := range keysA[sentAtAnswer:] {
		if k == 1 {
			oldAfterAnswer++
		}
	}
	if keysA[0] != 1 || keysA[len(keysA)-1] != 2 || oldAfterAnswer < 10 {
		t.Fatalf("test did not send under both keys as planned (%d old-key packets after the answer): %v", oldAfterAnswer, keysA)
	}
	checkStream(t, plain.peer.Collect(len(sentA), wait), sentA, 0, 160)

	// rtpbridge → SRTP peer: every packet decrypts under the old or the new rtpbridge key; the
	// new one is used from the rekey on, before the peer's answer.
	raws := sp.collect(len(sentB), wait)
	var got []rtppeer.Packet
	var keys []int
	for i, r := range raws {
		key := 2
		p, err := srtpDecrypt(newRX, r.b)
		if err != nil {
			key = 1
			if p, err = srtpDecrypt(oldRX, r.b); err != nil {
				t.Fatalf("packet %d (seq %d) from rtpbridge decrypts under neither its old nor its new key", i, binaryBESeq(r.b))
			}
		}
		if key == 2 && r.at.Before(tR0) {
			t.Fatalf("packet %d under the new key arrived before srtp_rekey was called", i)
		}
		if key == 1 && r.at.After(tR.Add(200*time.Millisecond)) {
			t.Fatalf("packet %d arrived %v after the srtp_rekey response under the old key: the new send key is not used immediately", i, r.at.Sub(tR))
		}
		if i > 0 && key < keys[i-1] {
			t.Fatalf("packet %d is under the old key after packets under the new one", i)
		}
		got = append(got, p)
		keys = append(keys, key)
	}
	checkStream(t, got, sentB, 0, 160)
	firstNew := -1
	for i, k := range keys {
		if k == 2 {
			firstNew = i
			break
		}
	}
	t.Logf("rtpbridge → peer: %d packets under the old key, %d under the new; first new-key packet %v after the srtp_rekey response",
		firstNew, len(keys)-firstNew, raws[max(firstNew, 0)].at.Sub(tR))
	if firstNew <= 0 || !raws[firstNew].at.Before(tA0) {
		t.Fatalf("rtpbridge's new key first seen at packet %d (rekey at packet ≈%d): not before the answer", firstNew, int(tR0.Sub(raws[0].at)/(20*time.Millisecond)))
	}

	// SRTCP follows: reports after the rekey are under the new key.
	srAfter := 0
	for len(sp.rtcpIn) > 0 {
		r := <-sp.rtcpIn
		if _, err := newRX.DecryptRTCP(nil, r.b, nil); err == nil {
			if r.at.Before(tR0) {
				t.Fatalf("SRTCP under the new key before the rekey")
			}
			srAfter++
			continue
		}
		if _, err := oldRX.DecryptRTCP(nil, r.b, nil); err != nil {
			t.Fatalf("SRTCP from rtpbridge decrypts under neither key: %v", err)
		}
		if r.at.After(tR.Add(200 * time.Millisecond)) {
			t.Fatalf("SRTCP under the old key %v after the rekey", r.at.Sub(tR))
		}
	}
	if srAfter == 0 {
		t.Fatalf("no SRTCP report under the new key after the rekey")
	}

	if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
		t.Fatalf("rtpbridge_srtp_errors_total = %v during the rekey, want 0", v)
	}

	// After the forced switch the old key is rejected and counted, RTP and SRTCP alike.
	routed := srtpMetric(t, srv, "rtpbridge_packets_routed_total")
	h := hA
	for i := 0; i < 5; i++ {
		sp.sendRaw(sp.protect(oldTX, h, rtppeer.Pattern(i, 160)))
		h.SequenceNumber++
		h.Timestamp += 160
	}
	sp.sendRTCP(oldTX, &rtcp.Goodbye{Sources: []uint32{hA.SSRC}, Reason: "stale"})
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 6)
	plain.peer.ExpectNone(200 * time.Millisecond)
	if v := srtpMetric(t, srv, "rtpbridge_packets_routed_total"); v != routed {
		t.Fatalf("old-key packets after the switch-over were routed (%v → %v)", routed, v)
	}
	// … and the call goes on under the new key.
	sp.tx = newTX
	want := srtpPatterns(5)
	sp.stream(h, 5, func(i int) []byte { return want[i] })
	checkStream(t, plain.peer.Collect(5, wait), want, 0, 160)
	sp.sendRTCP(newTX, &rtcp.Goodbye{Sources: []uint32{hA.SSRC}, Reason: "fresh"})
	if ev := c.WaitEvent(protocol.EventRTCPBye, wait); !strings.Contains(string(ev.Data), `"reason":"fresh"`) {
		t.Fatalf("rtcp_bye = %s, want the one under the new key", ev.Data)
	}
}

func binaryBESeq(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	return int(b[2])<<8 | int(b[3])
}

// ---------------------------------------------------------------------------------------------
// 5. Sequence-number wrap (rollover counter).

func TestSRTPSequenceWrap(t *testing.T) {
	for _, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			_, _, sp := srtpLegFromOffer(t, c, s, "RTP/SAVP", "RTP/SAVP")
			plain := srtpPlainLeg(t, c)

			// Peer → rtpbridge: 36 packets before the wrap, 64 after (ROC 0 → 1).
			const n = 100
			want := srtpPatterns(n)
			sp.stream(rtp.Header{PayloadType: 0, SequenceNumber: 65500, Timestamp: 1, SSRC: 0xc0}, n, func(i int) []byte { return want[i] })
			checkStream(t, plain.peer.Collect(n, wait), want, 0, 160)

			// rtpbridge → peer: rtpbridge picks its own random starting sequence number and then
			// keeps the source's spacing, so move its output to just below the wrap in jumps of
			// at most 16000 (well inside RFC 3711 §3.3.1's 2^15 estimate), one packet per jump.
			const ssrc = 0xd0
			in, ts := uint16(1000), uint32(0)
			plain.peer.Send(rtp.Header{PayloadType: 0, SequenceNumber: in, Timestamp: ts, SSRC: ssrc}, rtppeer.Pattern(0, 160))
			first := sp.decryptAll(sp.collect(1, wait))
			if len(first) != 1 {
				t.Fatal("first packet not received")
			}
			const target = 65500
			for d := uint16(target - first[0].Header.SequenceNumber); d > 0; {
				step := min(d, 16000)
				in += step
				ts += uint32(step) * 160
				plain.peer.Send(rtp.Header{PayloadType: 0, SequenceNumber: in, Timestamp: ts, SSRC: ssrc}, rtppeer.Pattern(int(d), 160))
				got := sp.decryptAll(sp.collect(1, wait))
				if len(got) != 1 || !bytes.Equal(got[0].Payload, rtppeer.Pattern(int(d), 160)) {
					t.Fatalf("packet after a jump of %d not received intact", step)
				}
				d -= step
			}
			want2 := srtpPatterns(n)
			plain.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: in + 1, Timestamp: ts + 160, SSRC: ssrc}, n, 160, true, func(i int) []byte { return want2[i] })
			got := sp.decryptAll(sp.collect(n, wait))
			checkStream(t, got, want2, 0, 160)
			if got[0].Header.SequenceNumber != target+1 || got[34].Header.SequenceNumber != 65535 || got[35].Header.SequenceNumber != 0 {
				t.Fatalf("rtpbridge's stream did not cross the wrap as planned: seq %d, %d, %d", got[0].Header.SequenceNumber, got[34].Header.SequenceNumber, got[35].Header.SequenceNumber)
			}
			if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
				t.Errorf("rtpbridge_srtp_errors_total = %v, want 0", v)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 6. Bad crypto attributes, honoured key parameters, accept_answer and srtp_rekey errors.

func srtpEndpointCount(t testing.TB, c *testserver.Client) int {
	t.Helper()
	var info struct {
		Endpoints []json.RawMessage `json:"endpoints"`
	}
	c.MustCall("session.info", nil, &info)
	return len(info.Endpoints)
}

func srtpContainsAll(msg string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
			return false
		}
	}
	return true
}

func TestSRTPBadCryptoRejected(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	port := freeUDPPort(t)
	s80 := srtpSuites[0]
	good := srtpB64(s80.newKey(t))
	good2 := srtpB64(s80.newKey(t))
	prefix := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
	cases := []struct {
		name  string
		lines []string
		words []string // the message must name the problem
	}{
		{"bad base64", []string{prefix + "inline:@@not*base64@@"}, []string{"base64"}},
		{"short key", []string{prefix + "inline:" + srtpB64(make([]byte, 20))}, []string{"key", "20 bytes", "30"}},
		{"short AES-256 key", []string{"a=crypto:1 AEAD_AES_256_GCM inline:" + srtpB64(make([]byte, 30))}, []string{"key", "30 bytes", "44"}},
		{"empty key", []string{prefix + "inline:"}, []string{"key"}},
		{"unknown suite", []string{"a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + good}, []string{"unknown suite", "F8_128_HMAC_SHA1_80"}},
		{"missing inline", []string{prefix + good}, []string{"inline"}},
		{"no key at all", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80"}, []string{"inline"}},
		{"bad tag", []string{"a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" + good}, []string{"tag"}},
		{"two keys without MKI", []string{prefix + "inline:" + good + ";inline:" + good2}, []string{"MKI"}},
		{"two MKI lengths", []string{prefix + "inline:" + good + "|1:1;inline:" + good2 + "|2:2"}, []string{"MKI"}},
		{"duplicate MKI", []string{prefix + "inline:" + good + "|1:1;inline:" + good2 + "|1:1"}, []string{"MKI"}},
		{"KDR", []string{prefix + "inline:" + good + " KDR=1"}, []string{"KDR"}},
		{"UNENCRYPTED_SRTP", []string{prefix + "inline:" + good + " UNENCRYPTED_SRTP"}, []string{"UNENCRYPTED_SRTP"}},
		{"unknown session parameter", []string{prefix + "inline:" + good + " FOO=1"}, []string{"FOO"}},
		{"several bad lines", []string{prefix + "inline:@@", "a=crypto:2 NULL_HMAC inline:" + good}, []string{"base64", "NULL_HMAC"}},
		{"SAVP without crypto", nil, []string{"a=crypto"}},
	}
	for _, tc := range cases {
		e := c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": rtppeer.SDP(port, "RTP/SAVP", srtpPCMU, tc.lines...)}, protocol.CodeEndpointError)
		t.Logf("%-26s → %s", tc.name, e.Message)
		if !srtpContainsAll(e.Message, tc.words) {
			t.Errorf("%s: message %q does not name the problem (want %q)", tc.name, e.Message, tc.words)
		}
		if n := srtpEndpointCount(t, c); n != 0 {
			t.Fatalf("%s: session has %d endpoints after a rejected offer", tc.name, n)
		}
	}
	if v := srtpMetric(t, srv, "rtpbridge_endpoints_active"); v != 0 {
		t.Errorf("rtpbridge_endpoints_active = %v", v)
	}

	// srtp_rekey on a plain leg and on an unknown endpoint.
	plain := srtpPlainLeg(t, c)
	if e := c.ExpectError("endpoint.srtp_rekey", map[string]any{"endpoint_id": plain.id}, protocol.CodeEndpointError); e.Message != "SRTP is not active on this endpoint" {
		t.Errorf("rekey on plain leg: %q", e.Message)
	}
	if e := c.ExpectError("endpoint.srtp_rekey", map[string]any{"endpoint_id": "6f1c0d2e-6b7a-4b55-9a57-2f2d6a1f0c11"}, protocol.CodeEndpointError); e.Message != "Endpoint not found" {
		t.Errorf("rekey on unknown endpoint: %q", e.Message)
	}
}

// Answers to rtpbridge's SRTP offer that do not fit it are rejected without spoiling the offer.
func TestSRTPAcceptAnswerCryptoErrors(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	bID, offer, cr := srtpOwnOffer(t, c)
	s := srtpSuites[0]
	b := newSRTPPeer(t, s)
	answer := func(lines ...string) map[string]any {
		return map[string]any{"endpoint_id": bID, "sdp": rtppeer.SDP(b.port(), "RTP/SAVP", srtpPCMU, lines...)}
	}
	for _, tc := range []struct {
		name  string
		lines []string
		words []string
	}{
		{"no crypto", nil, []string{"a=crypto"}},
		{"unknown tag", []string{srtpCryptoLine(9, s, b.txKey)}, []string{"tag 9"}},
		{"suite differs from the tag's", []string{srtpCryptoLine(1, srtpSuites[1], b.txKey)}, []string{"AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80"}},
		{"bad key", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%%%"}, []string{"base64"}},
	} {
		e := c.ExpectError("endpoint.accept_answer", answer(tc.lines...), protocol.CodeEndpointError)
		if !srtpContainsAll(e.Message, tc.words) {
			t.Errorf("%s: message %q does not name the problem (want %q)", tc.name, e.Message, tc.words)
		}
	}
	// The offer still stands: a proper answer is accepted and media flows.
	b.setRX(cr[0].key)
	b.target(offer)
	c.MustCall("endpoint.accept_answer", answer(b.cryptoLine(1)), nil)
	plain := srtpPlainLeg(t, c)
	srtpCheckPlainToSRTP(t, plain.peer, b, 0x31)
	srtpCheckSRTPToPlain(t, b, plain.peer, 0x32, 1)

	// A crypto answer to a plain offer.
	var res struct {
		EndpointID string `json:"endpoint_id"`
	}
	c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "codecs": []string{"PCMU"}}, &res)
	e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": res.EndpointID, "sdp": rtppeer.SDP(b.port(), "RTP/SAVP", srtpPCMU, b.cryptoLine(1))}, protocol.CodeEndpointError)
	if !srtpContainsAll(e.Message, []string{"crypto", "plain"}) {
		t.Errorf("crypto answer to plain offer: %q", e.Message)
	}
	if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
		t.Errorf("rtpbridge_srtp_errors_total = %v", v)
	}
}

// A lifetime of at least 2^31, one MKI and a WSH session parameter are honoured (issue 5:
// "honoured or rejected, never half-applied"): the MKI must then be in every packet.
func TestSRTPHonouredKeyParameters(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	s := srtpSuites[0]
	sp := newSRTPPeer(t, s)
	sp.tx = s.context(t, sp.txKey, srtp.MasterKeyIndicator([]byte{0, 0, 0, 7}))
	offer := rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU, fmt.Sprintf("a=crypto:1 %s inline:%s|2^31|7:4 WSH=128", s.name, srtpB64(sp.txKey)))
	srtpAnswerOffer(t, c, sp, offer, "RTP/SAVP", 1, s)
	plain := srtpPlainLeg(t, c)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x21, 1)
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x22)

	// The same key under another MKI, or without the MKI, is not accepted.
	otherMKI := s.context(t, sp.txKey, srtp.MasterKeyIndicator([]byte{0, 0, 0, 8}))
	noMKI := s.context(t, sp.txKey)
	sp.sendRaw(sp.protect(otherMKI, rtp.Header{PayloadType: 0, SequenceNumber: 200, SSRC: 0x21}, make([]byte, 160)))
	sp.sendRaw(sp.protect(noMKI, rtp.Header{PayloadType: 0, SequenceNumber: 201, SSRC: 0x21}, make([]byte, 160)))
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 2)
	plain.peer.ExpectNone(200 * time.Millisecond)
}

// ---------------------------------------------------------------------------------------------
// 7. Interop with the Debian ffmpeg CLI (libavformat's own SRTP).

func srtpCheckTone(t *testing.T, pcm []int16, what string) {
	t.Helper()
	if len(pcm) < 8000 {
		t.Fatalf("%s: only %d samples", what, len(pcm))
	}
	pcm = pcm[800:] // skip the start
	f := audiotest.DominantFrequency(pcm, 8000)
	snr, err := audiotest.SNR(pcm, 8000, 1000)
	t.Logf("%s: %d samples, dominant %.1f Hz, SNR %.1f dB", what, len(pcm), f, snr)
	if math.Abs(f-1000) > 10 {
		t.Fatalf("%s: dominant frequency %.1f Hz, want 1000 Hz ± 1 %%", what, f)
	}
	if err != nil || snr < 30 {
		t.Fatalf("%s: SNR %.1f dB (%v), want ≥ 30 dB", what, snr, err)
	}
}

func TestSRTPFFmpegSendsThroughRtpbridge(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	s := srtpSuites[0]
	key := s.newKey(t)
	senderPort := freeUDPPort(t)
	var a struct {
		EndpointID string `json:"endpoint_id"`
		SDPAnswer  string `json:"sdp_answer"`
	}
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": rtppeer.SDP(senderPort, "RTP/SAVP", []string{"0 PCMU/8000"}, srtpCryptoLine(1, s, key))}, &a)
	srtpCheckAnswer(t, a.SDPAnswer, "RTP/SAVP", 1, s, key)
	aPort := mPort(t, a.SDPAnswer)
	plain := srtpPlainLeg(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, audiotest.FFmpegCLI, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=8000:duration=2",
		"-af", "asetnsamples=n=160", // 20 ms packets, as a phone sends
		"-ac", "1", "-c:a", "pcm_mulaw", "-f", "rtp",
		"-srtp_out_suite", s.name, "-srtp_out_params", srtpB64(key),
		fmt.Sprintf("srtp://127.0.0.1:%d?localport=%d", aPort, senderPort))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg sender: %v\n%s", err, out)
	}
	got := plain.peer.Collect(1000, 500*time.Millisecond)
	if len(got) < 95 {
		t.Fatalf("plain leg received %d packets of ffmpeg's 100", len(got))
	}
	var payload []byte
	for i, p := range got {
		if i > 0 && p.Header.SequenceNumber != got[i-1].Header.SequenceNumber+1 {
			t.Fatalf("gap in the stream: seq %d → %d", got[i-1].Header.SequenceNumber, p.Header.SequenceNumber)
		}
		if len(p.Payload) != 160 {
			t.Fatalf("packet %d has %d payload bytes, want 160 (ffmpeg sends 20 ms packets)", i, len(p.Payload))
		}
		payload = append(payload, p.Payload...)
	}
	srtpCheckTone(t, audiotest.DecodeULaw(payload), "ffmpeg SRTP → rtpbridge → plain")
	// Every SRTP packet and every SRTCP report ffmpeg sent authenticated.
	if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
		t.Fatalf("rtpbridge_srtp_errors_total = %v: ffmpeg's SRTP/SRTCP was rejected", v)
	}
}

func TestSRTPFFmpegReceivesFromRtpbridge(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	s := srtpSuites[0]
	ffPort := freeUDPPort(t)
	bID, _, cr := srtpOwnOffer(t, c)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": bID,
		"sdp": rtppeer.SDP(ffPort, "RTP/SAVP", []string{"0 PCMU/8000"}, srtpCryptoLine(1, s, s.newKey(t)))}, nil)
	plain := srtpPlainLeg(t, c)
	payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 8000*8, 0.25, 1000))

	dir := t.TempDir()
	sdpPath := filepath.Join(dir, "in.sdp")
	outPath := filepath.Join(dir, "out.raw")
	// ffmpeg decrypts with the key rtpbridge offered under tag 1 (the suite we answered).
	if err := os.WriteFile(sdpPath, []byte(rtppeer.SDP(ffPort, "RTP/SAVP", []string{"0 PCMU/8000"}, cr[0].line)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, audiotest.FFmpegCLI, "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-protocol_whitelist", "file,udp,rtp,srtp",
		"-i", sdpPath, "-t", "2", "-f", "s16le", "-ar", "8000", "-ac", "1", "-y", outPath)
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// rtpbridge's first packet must reach ffmpeg: a receiver that first hears the stream after
	// a sequence wrap cannot know the rollover counter.
	if err := audiotest.WaitUDPBound(ctx, ffPort); err != nil {
		t.Fatalf("ffmpeg never bound UDP port %d: %v\n%s", ffPort, err, stderr)
	}
	bAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, plain.sdp)}
	h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 100, Timestamp: 0, SSRC: 0xf00d}
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	var runErr error
	sent := 0
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-ctx.Done():
			t.Fatalf("ffmpeg did not finish: %v\n%s", ctx.Err(), stderr)
		case <-ticker.C:
		}
		if sent == len(payloads) {
			continue // ffmpeg should have had enough; wait for it
		}
		b, err := (&rtp.Packet{Header: h, Payload: payloads[sent]}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.peer.RTP.WriteToUDP(b, bAddr); err != nil {
			t.Fatal(err)
		}
		h.SequenceNumber++
		h.Timestamp += 160
		sent++
	}
	if runErr != nil {
		t.Fatalf("ffmpeg receiver: %v\n%s", runErr, stderr)
	}
	if log := strings.ToLower(stderr.String()); strings.Contains(log, "hmac") || strings.Contains(log, "srtp") {
		t.Fatalf("ffmpeg reported SRTP trouble:\n%s", stderr)
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d packets to rtpbridge", sent)
	srtpCheckTone(t, audiotest.PCMFromBytes(raw), "plain → rtpbridge → ffmpeg SRTP")
}

// TestSRTPRekeyReopensLearningWindow: once the leg has latched its first source, a new source
// (same keys) cannot take it over; endpoint.srtp_rekey reopens the window (PROTOCOL.md §15, D24),
// after which it can, once, and the old source is locked out.
func TestSRTPRekeyReopensLearningWindow(t *testing.T) {
	k := newSRTPCall(t)
	srv, c, id, answer, sp, plain := k.srv, k.c, k.id, k.answer, k.sp, k.plain
	gen := func(i int) []byte { return rtppeer.Pattern(i, 160) }
	h, _ := sp.stream(rtp.Header{PayloadType: 0, SSRC: 0x77, SequenceNumber: 100}, 3, gen)
	if got := plain.peer.Collect(3, wait); len(got) != 3 {
		t.Fatalf("plain leg got %d packets", len(got))
	}

	// The same peer, moved to another socket (a NAT rebinding, or an attacker with the keys).
	// The first packet latched the leg to the original socket (D24): until a window reopens,
	// the moved socket is rejected, even inside the creation window.
	moved, movedRTCP := rtppeer.ListenPair(t)
	defer moved.Close()
	defer movedRTCP.Close()
	bridge := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, answer)}
	sendFromMoved := func(routed bool) {
		t.Helper()
		if _, err := moved.WriteToUDP(sp.protect(sp.tx, h, gen(0)), bridge); err != nil {
			t.Fatal(err)
		}
		h.SequenceNumber++
		h.Timestamp += 160
		if !routed {
			plain.peer.ExpectNone(300 * time.Millisecond)
			return
		}
		if got := plain.peer.Collect(1, wait); len(got) != 1 {
			t.Fatal("packet from the moved socket was not routed")
		}
	}
	// Does rtpbridge send to the moved socket now?
	sendsToMoved := func() bool {
		t.Helper()
		plain.peer.Send(rtp.Header{PayloadType: 0, SSRC: 0x88, SequenceNumber: h.SequenceNumber}, gen(1))
		_ = moved.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 2048)
		_, _, err := moved.ReadFromUDP(buf)
		return err == nil
	}

	sendFromMoved(false)
	srtpWaitMetric(t, srv, "rtpbridge_packets_rejected_total", 1)
	if sendsToMoved() {
		t.Fatal("a new source took the leg over after the latch")
	}
	sp.collect(1, wait) // that packet went to the original socket

	var res struct {
		SDP string `json:"sdp"`
	}
	c.MustCall("endpoint.srtp_rekey", map[string]any{"endpoint_id": id}, &res)
	sendFromMoved(true) // the peer's key is unchanged until it answers the re-offer
	if !sendsToMoved() {
		t.Fatal("srtp_rekey did not reopen the learning window")
	}
	// The move latched: the original socket is locked out now.
	h, _ = sp.stream(h, 1, gen)
	plain.peer.ExpectNone(300 * time.Millisecond)
	srtpWaitMetric(t, srv, "rtpbridge_packets_rejected_total", 2)
	if v := srtpMetric(t, srv, "rtpbridge_srtp_errors_total"); v != 0 {
		t.Errorf("rtpbridge_srtp_errors_total = %v: rejected packets reached SRTP", v)
	}
}

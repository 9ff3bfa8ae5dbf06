package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// Bounds of one call's setup and teardown.
const (
	dialTimeout    = 5 * time.Second
	requestTimeout = 12 * time.Second // the server bounds each command to 5 s + 5 s (§2.4)
	primeTimeout   = 3 * time.Second
	primeDrain     = 60 * time.Millisecond
	destroyTimeout = 5 * time.Second
)

// legSpec is one side of a call: its codec and the payloads its peer sends.
type legSpec struct {
	codec    codec.Codec
	payloads [][]byte
}

// call is one two-party call: one WebSocket connection, one session, two plain RTP legs each
// created from an offer by its own UDP peer socket on 127.0.0.1.
type call struct {
	i       int
	ctl     *control
	session string
	conns   [2]*net.UDPConn // peer A, peer B
	streams [2]*stream      // A→B (sent by peer A), B→A (sent by peer B)
	recvs   [2]*receiver    // A→B (read by peer B), B→A (read by peer A)
	webrtc  *webrtcLeg      // leg A's WebRTC client (-webrtc-a), nil otherwise
}

// offerSDP is a SIP-phone-like offer for one codec with RTCP multiplexed on the RTP port (so
// the server's RTCP reaches the one socket the peer has).
func offerSDP(port int, c codec.Codec) string {
	var b strings.Builder
	pt := c.PayloadType()
	fmt.Fprintf(&b, "v=0\r\no=rtpbridge-load %d 1 IN IP4 127.0.0.1\r\ns=rtpbridge-load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", port)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %d\r\n", port, pt)
	switch c {
	case codec.Opus:
		fmt.Fprintf(&b, "a=rtpmap:%d opus/48000/2\r\na=fmtp:%d minptime=10;useinbandfec=1\r\n", pt, pt)
	default:
		fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", pt, c.Name(), c.ClockRate())
	}
	b.WriteString("a=rtcp-mux\r\na=ptime:20\r\na=sendrecv\r\n")
	return b.String()
}

// parseAnswer takes the media address and the first payload type of the answer's audio
// m-line.
func parseAnswer(sdp string) (netip.AddrPort, int, error) {
	var addr netip.Addr
	port, pt := -1, -1
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "), strings.HasPrefix(line, "c=IN IP6 "):
			a, err := netip.ParseAddr(strings.Fields(line[9:])[0])
			if err == nil {
				addr = a
			}
		case strings.HasPrefix(line, "m=audio ") && port < 0:
			f := strings.Fields(line)
			if len(f) < 4 {
				return netip.AddrPort{}, 0, fmt.Errorf("answer: bad m-line %q", line)
			}
			var err error
			if port, err = strconv.Atoi(f[1]); err != nil {
				return netip.AddrPort{}, 0, fmt.Errorf("answer: bad port in %q", line)
			}
			if pt, err = strconv.Atoi(f[3]); err != nil {
				return netip.AddrPort{}, 0, fmt.Errorf("answer: bad payload type in %q", line)
			}
		}
	}
	if port <= 0 || port > 65535 || !addr.IsValid() {
		return netip.AddrPort{}, 0, fmt.Errorf("answer without a usable audio address: %q", sdp)
	}
	return netip.AddrPortFrom(addr, uint16(port)), pt, nil
}

// setup creates the call, primes both directions and starts the main streams. On error it
// returns a key naming the step (and the server's error code) and leaves teardown to the
// caller.
func (r *runner) setup(ctx context.Context, c *call) (string, error) {
	var err error
	if c.ctl, err = dialControl(ctx, r.cfg.URL, dialTimeout, r.countEvent); err != nil {
		return "connect", err
	}
	var sess struct {
		SessionID string `json:"session_id"`
	}
	if err := c.ctl.call(ctx, requestTimeout, "session.create", nil, &sess); err != nil {
		return "session.create", err
	}
	c.session = sess.SessionID

	specs := [2]legSpec{r.legA, r.legB}
	var remotes [2]netip.AddrPort
	for i, spec := range specs {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return "peer socket", err
		}
		c.conns[i] = conn
		_ = conn.SetReadBuffer(1 << 20)
		port := conn.LocalAddr().(*net.UDPAddr).Port
		if i == 0 && r.cfg.WebRTCA {
			if c.webrtc, remotes[i], err = newWebRTCLeg(ctx, c.ctl, spec.codec, conn); err != nil {
				return "webrtc", err
			}
			continue
		}
		var res struct {
			EndpointID string `json:"endpoint_id"`
			SDPAnswer  string `json:"sdp_answer"`
		}
		params := map[string]any{"sdp": offerSDP(port, spec.codec), "direction": "sendrecv"}
		if err := c.ctl.call(ctx, requestTimeout, "endpoint.create_from_offer", params, &res); err != nil {
			return "endpoint.create_from_offer", err
		}
		addr, pt, err := parseAnswer(res.SDPAnswer)
		if err != nil {
			return "answer", err
		}
		if pt != int(spec.codec.PayloadType()) {
			return "answer", fmt.Errorf("answer chose payload type %d, offered %s as %d", pt, spec.codec, spec.codec.PayloadType())
		}
		remotes[i] = addr
	}
	if err := r.startRecording(ctx, c); err != nil {
		return "recording.start", err
	}

	// Leg X's peer sends to leg X; what it sends comes out at the other peer.
	for i, spec := range specs {
		start := (c.i*37 + i*101) % len(spec.payloads)
		c.streams[i] = newStream(c.conns[i], remotes[i], spec.codec.PayloadType(), spec.codec.TimestampStep(),
			spec.payloads, start, rand.Uint32(), uint16(rand.Uint32()), rand.Uint32())
	}
	var mainB *stream
	if r.cfg.Bidirectional {
		mainB = c.streams[1]
	}
	c.recvs[0] = newReceiver(c.conns[1], c.streams[0], r.clk, r.win)
	c.recvs[1] = newReceiver(c.conns[0], mainB, r.clk, r.win)
	for _, rc := range c.recvs {
		go rc.run()
	}

	if err := r.prime(ctx, c); err != nil {
		return "priming", err
	}

	// Main streams: staggered on a 1 ms grid, B half a frame after A.
	phase := int64(c.i*7%20) * int64(time.Millisecond)
	due := (r.clk.now()/int64(time.Millisecond)+1)*int64(time.Millisecond) + phase
	c.streams[0].startMain()
	r.pacer.add(c.streams[0], due)
	if r.cfg.Bidirectional {
		c.streams[1].startMain()
		r.pacer.add(c.streams[1], due+int64(frameInterval/2))
	}
	return "", nil
}

// prime opens both legs: the first packets of a call do one-off work (state changes, symmetric-RTP
// learning, transcoder start-up, which may hold the first frame back), so both peers send paced
// packets until each has received something, at most primeTimeout, before anything is measured. Then, after a
// pause for stragglers, the receivers are armed: everything before is not counted.
func (r *runner) prime(ctx context.Context, c *call) error {
	deadline := time.Now().Add(primeTimeout)
	tick := time.NewTicker(frameInterval)
	defer tick.Stop()
	for c.recvs[0].primed.Load() == 0 || c.recvs[1].primed.Load() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no media came through within %v (A→B %d, B→A %d packets)",
				primeTimeout, c.recvs[0].primed.Load(), c.recvs[1].primed.Load())
		}
		for _, s := range c.streams {
			if err := s.writeNext(); err != nil {
				return err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-time.After(primeDrain):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, rc := range c.recvs {
		rc.armed.Store(true)
	}
	return nil
}

// teardown destroys the session and closes everything of c; the receivers have ended when it
// returns. It reports a session.destroy failure.
func (c *call) teardown() error {
	var err error
	if c.ctl != nil {
		if c.session != "" {
			err = c.ctl.call(context.Background(), destroyTimeout, "session.destroy", nil, nil)
		}
		c.ctl.close()
	}
	if c.webrtc != nil {
		c.webrtc.close()
	}
	for _, conn := range c.conns {
		if conn != nil {
			conn.Close()
		}
	}
	for _, rc := range c.recvs {
		if rc != nil {
			<-rc.done
		}
	}
	return err
}

var errNoCalls = errors.New("no call could be set up")

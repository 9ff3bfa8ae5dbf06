package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// connectTimeout bounds ICE and DTLS of one WebRTC leg.
const connectTimeout = 10 * time.Second

// webrtcLeg is a call leg played by a pion WebRTC client (what a browser is to rtpbridge), wired
// to the tool's plain-RTP machinery through one relay socket: the leg's stream sends its RTP
// packets from the peer socket to the relay, which writes them to the client's track; what the
// client receives is written from the relay to the peer socket, where the leg's receiver reads
// it. The pacer, the receivers and the statistics stay the same for both kinds of leg.
type webrtcLeg struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	relay *net.UDPConn
	peer  netip.AddrPort // the peer socket the receiver reads
	wg    sync.WaitGroup
}

// webrtcParams is the client's codec: Opus like a browser, or the G.711/G.722 codecs WebRTC legs
// may negotiate too (D13).
func webrtcParams(c codec.Codec) webrtc.RTPCodecParameters {
	p := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(c.PayloadType())}
	switch c {
	case codec.Opus:
		p.MimeType, p.ClockRate, p.Channels, p.SDPFmtpLine = webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1"
	default:
		p.MimeType, p.ClockRate = "audio/"+c.Name(), uint32(c.ClockRate())
	}
	return p
}

// newWebRTCLeg creates the client, lets rtpbridge answer its offer in the call's session and
// waits until ICE and DTLS are up. peer is the leg's peer socket; the returned address is where
// the leg's stream must send.
func newWebRTCLeg(ctx context.Context, ctl *control, c codec.Codec, peer *net.UDPConn) (*webrtcLeg, netip.AddrPort, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtcParams(c), webrtc.RTPCodecTypeAudio); err != nil {
		return nil, netip.AddrPort{}, err
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// No interceptors: the tool's client costs as little as possible next to the server.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	l := &webrtcLeg{pc: pc, peer: peer.LocalAddr().(*net.UDPAddr).AddrPort()}
	fail := func(err error) (*webrtcLeg, netip.AddrPort, error) {
		l.close()
		return nil, netip.AddrPort{}, err
	}
	if l.relay, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		return fail(err)
	}
	_ = l.relay.SetReadBuffer(1 << 20)
	if l.track, err = webrtc.NewTrackLocalStaticRTP(webrtcParams(c).RTPCodecCapability, "audio", "rtpbridge-load"); err != nil {
		return fail(err)
	}
	sender, err := pc.AddTrack(l.track)
	if err != nil {
		return fail(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	// What the client receives goes to the peer socket, where the call's receiver reads it.
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "closed") {
					return
				}
				continue
			}
			_, _ = l.relay.WriteToUDPAddrPort(buf[:n], l.peer)
		}
	})
	// RTCP for our sender must be read, or pion's buffer for it fills.
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	// What the stream sends to the relay goes out on the client's track.
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := l.relay.ReadFromUDPAddrPort(buf)
			if err != nil {
				if isClosed(err) {
					return
				}
				continue
			}
			_, _ = l.track.Write(buf[:n])
		}
	}()

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-time.After(connectTimeout):
		return fail(errors.New("WebRTC client: ICE gathering timed out"))
	}
	var res struct {
		SDPAnswer string `json:"sdp_answer"`
	}
	params := map[string]any{"sdp": pc.LocalDescription().SDP, "direction": "sendrecv"}
	if err := ctl.call(ctx, requestTimeout, "endpoint.create_from_offer", params, &res); err != nil {
		return fail(fmt.Errorf("webrtc %w", err))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.SDPAnswer}); err != nil {
		return fail(fmt.Errorf("WebRTC client: rtpbridge's answer: %w", err))
	}
	select {
	case <-connected:
	case <-time.After(connectTimeout):
		return fail(fmt.Errorf("WebRTC client: not connected within %v (state %s)", connectTimeout, pc.ConnectionState()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return l, l.relay.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// close ends the client and its relay, and waits for the relay's goroutines.
func (l *webrtcLeg) close() {
	if l.pc != nil {
		_ = l.pc.GracefulClose()
	}
	if l.relay != nil {
		_ = l.relay.Close()
	}
	l.wg.Wait()
}

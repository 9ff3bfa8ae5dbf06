package sdp

import "strings"

// crlf turns a readable multi-line literal into CRLF-terminated SDP text.
func crlf(s string) string {
	s = strings.TrimLeft(s, "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// Realistic SDPs shaped like what real peers send. They seed the fuzzers and
// drive the table tests.
var (
	linphoneOffer = crlf(`
v=0
o=alice 2890 2890 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
`)

	asteriskOffer = crlf(`
v=0
o=- 1234567890 1234567890 IN IP4 10.0.0.5
s=Asterisk
c=IN IP4 10.0.0.5
t=0 0
m=audio 10000 RTP/AVP 0 8 3 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`)

	freeswitchOffer = crlf(`
v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 203.0.113.7
s=FreeSWITCH
c=IN IP4 203.0.113.7
t=0 0
m=audio 24580 RTP/AVP 102 9 0 8 103 101 13
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:103 telephone-event/48000
a=fmtp:103 0-16
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
a=rtcp:24581 IN IP4 203.0.113.7
`)

	// Cisco CUBE/CUCM style: bandwidth lines, session name with spaces,
	// a media-level c= that differs from the session one.
	ciscoOffer = crlf(`
v=0
o=CiscoSystemsSIP-GW-UserAgent 2000 1 IN IP4 10.10.10.10
s=SIP Call
c=IN IP4 10.10.10.10
b=TIAS:64000
b=AS:64
t=0 0
m=audio 16384 RTP/AVP 0 101 19
c=IN IP4 10.10.10.11
b=TIAS:64000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtpmap:19 CN/8000
a=ptime:20
`)

	pcmaOnlyOffer = crlf(`
v=0
o=- 42 42 IN IP4 198.51.100.1
s=-
c=IN IP4 198.51.100.1
t=0 0
m=audio 40000 RTP/AVP 8
a=sendrecv
`)

	dynamicOffer = crlf(`
v=0
o=peer 1 1 IN IP4 192.0.2.50
s=-
c=IN IP4 192.0.2.50
t=0 0
m=audio 5000 RTP/AVP 96 0 126 101
a=rtpmap:96 OPUS/48000/2
a=fmtp:96 useinbandfec=1;minptime=10
a=rtpmap:0 pcmu/8000
a=rtpmap:126 telephone-event/8000
a=fmtp:126 0-16
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-16
a=rtcp-mux
a=ptime:20
`)

	ipv6Offer = crlf(`
v=0
o=- 7 7 IN IP6 2001:db8::1
s=-
c=IN IP6 2001:db8::1
t=0 0
m=audio 6000 RTP/AVP 9 101
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendonly
`)

	sessionConnOffer = crlf(`
v=0
o=- 9 9 IN IP4 192.0.2.77
s=session c only
c=IN IP4 192.0.2.77
t=0 0
a=recvonly
m=audio 7000 RTP/AVP 0
`)

	portZeroOffer = crlf(`
v=0
o=- 3 3 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=audio 0 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
`)

	savpOffer = crlf(`
v=0
o=- 11 11 IN IP4 192.0.2.33
s=-
c=IN IP4 192.0.2.33
t=0 0
m=audio 5004 RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32
`)

	webrtcOffer = crlf(`
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Vr3S
a=ice-pwd:e4n3uTFSbz9TZt2hRflhD1PU
a=ice-options:trickle
a=fingerprint:sha-256 12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
`)

	// Quirky but real: LF endings, no s= and no t=, a session attribute
	// before c=, a bandwidth type pion rejects, T.38 image section, trailing blanks.
	quirkyOffer = "v=0\n" +
		"o=Z 0 0 IN IP4 192.0.2.88\n" +
		"a=sendrecv\n" +
		"c=IN IP4 192.0.2.88 \n" +
		"b=CT:1000\n" +
		"b=X-foo:12\n" +
		"m=audio 8000 RTP/AVP 18 0 101\n" +
		"b=as:64\n" +
		"a=rtpmap:18 G729/8000\n" +
		"a=fmtp:18 annexb=no\n" +
		"a=RTPMAP:101 telephone-event/8000\n" +
		"a=fmtp:101 0-15\n" +
		"m=image 8002 udptl t38\n" +
		"a=T38FaxVersion:0\n"
)

// seedCorpus lists every realistic SDP above.
func seedCorpus() []string {
	return []string{
		linphoneOffer, asteriskOffer, freeswitchOffer, ciscoOffer, pcmaOnlyOffer,
		dynamicOffer, ipv6Offer, sessionConnOffer, portZeroOffer, savpOffer,
		webrtcOffer, quirkyOffer,
	}
}

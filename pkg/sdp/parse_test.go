package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// fmtList renders formats as "PT:name/clock" for compact comparisons.
func fmtList(fs []Format) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%d:%s/%d", f.PT, f.Label(), f.ClockRate))
	}
	return strings.Join(parts, " ")
}

func mustParse(t *testing.T, s string) *Description {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, s)
	}
	return d
}

func TestParseRealPeers(t *testing.T) {
	tests := []struct {
		name      string
		sdp       string
		addr      string // "" = invalid
		profile   Profile
		mux       bool
		ptime     int
		dir       Direction
		codecs    string
		te        string
		formats   string
		crypto    int
		lines     int
		fecPT     int // PT whose OpusFEC must be true, -1 for none
		mediaLine int // index of the active m= line
	}{
		{
			name: "linphone", sdp: linphoneOffer, addr: "192.168.1.20:7078", profile: ProfileAVP, dir: SendRecv,
			codecs:  "96:opus/48000 0:PCMU/8000 8:PCMA/8000",
			te:      "101:telephone-event/48000 99:telephone-event/16000 100:telephone-event/8000",
			formats: "96:opus/48000 97:speex/16000 98:speex/8000 0:PCMU/8000 8:PCMA/8000 101:telephone-event/48000 99:telephone-event/16000 100:telephone-event/8000",
			lines:   2, fecPT: 96, mediaLine: 0,
		},
		{
			name: "asterisk", sdp: asteriskOffer, addr: "10.0.0.5:10000", profile: ProfileAVP, ptime: 20, dir: SendRecv,
			codecs:  "0:PCMU/8000 8:PCMA/8000 9:G722/8000",
			te:      "101:telephone-event/8000",
			formats: "0:PCMU/8000 8:PCMA/8000 3:GSM/8000 9:G722/8000 101:telephone-event/8000",
			lines:   1, fecPT: -1,
		},
		{
			name: "freeswitch", sdp: freeswitchOffer, addr: "203.0.113.7:24580", profile: ProfileAVP, ptime: 20, dir: SendRecv,
			codecs:  "102:opus/48000 9:G722/8000 0:PCMU/8000 8:PCMA/8000",
			te:      "103:telephone-event/48000 101:telephone-event/8000",
			formats: "102:opus/48000 9:G722/8000 0:PCMU/8000 8:PCMA/8000 103:telephone-event/48000 101:telephone-event/8000 13:CN/8000",
			lines:   1, fecPT: 102,
		},
		{
			name: "cisco media c= wins", sdp: ciscoOffer, addr: "10.10.10.11:16384", profile: ProfileAVP, ptime: 20, dir: SendRecv,
			codecs: "0:PCMU/8000", te: "101:telephone-event/8000",
			formats: "0:PCMU/8000 101:telephone-event/8000 19:CN/8000", lines: 1, fecPT: -1,
		},
		{
			name: "PCMA only", sdp: pcmaOnlyOffer, addr: "198.51.100.1:40000", profile: ProfileAVP, dir: SendRecv,
			codecs: "8:PCMA/8000", formats: "8:PCMA/8000", lines: 1, fecPT: -1,
		},
		{
			name: "dynamic PTs", sdp: dynamicOffer, addr: "192.0.2.50:5000", profile: ProfileAVP, mux: true, ptime: 20, dir: SendRecv,
			codecs:  "96:opus/48000 0:PCMU/8000",
			te:      "126:telephone-event/8000 101:telephone-event/48000",
			formats: "96:opus/48000 0:PCMU/8000 126:telephone-event/8000 101:telephone-event/48000",
			lines:   1, fecPT: 96,
		},
		{
			name: "IPv6", sdp: ipv6Offer, addr: "[2001:db8::1]:6000", profile: ProfileAVP, dir: SendOnly,
			codecs: "9:G722/8000", te: "101:telephone-event/8000",
			formats: "9:G722/8000 101:telephone-event/8000", lines: 1, fecPT: -1,
		},
		{
			name: "session c= and session direction", sdp: sessionConnOffer, addr: "192.0.2.77:7000", profile: ProfileAVP, dir: RecvOnly,
			codecs: "0:PCMU/8000", formats: "0:PCMU/8000", lines: 1, fecPT: -1,
		},
		{
			name: "port 0", sdp: portZeroOffer, addr: "", profile: ProfileAVP, dir: SendRecv,
			codecs: "0:PCMU/8000", te: "101:telephone-event/8000",
			formats: "0:PCMU/8000 101:telephone-event/8000", lines: 1, fecPT: -1,
		},
		{
			name: "SAVP with crypto", sdp: savpOffer, addr: "192.0.2.33:5004", profile: ProfileSAVP, dir: SendRecv,
			codecs: "0:PCMU/8000", te: "101:telephone-event/8000",
			formats: "0:PCMU/8000 101:telephone-event/8000", crypto: 2, lines: 1, fecPT: -1,
		},
		{
			name: "WebRTC", sdp: webrtcOffer, addr: "", profile: ProfileWebRTC, mux: true, dir: SendRecv,
			codecs:  "111:opus/48000 9:G722/8000 0:PCMU/8000 8:PCMA/8000",
			te:      "110:telephone-event/48000 126:telephone-event/8000",
			formats: "111:opus/48000 63:red/48000 9:G722/8000 0:PCMU/8000 8:PCMA/8000 13:CN/8000 110:telephone-event/48000 126:telephone-event/8000",
			lines:   1, fecPT: 111,
		},
		{
			name: "quirky: LF, no s=/t=, odd order, T.38", sdp: quirkyOffer, addr: "192.0.2.88:8000", profile: ProfileAVP, dir: SendRecv,
			codecs: "0:PCMU/8000", te: "101:telephone-event/8000",
			formats: "18:G729/8000 0:PCMU/8000 101:telephone-event/8000", lines: 2, fecPT: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustParse(t, tc.sdp)
			wantAddr := netip.AddrPort{}
			if tc.addr != "" {
				wantAddr = netip.MustParseAddrPort(tc.addr)
			}
			if d.Addr != wantAddr {
				t.Errorf("Addr = %v, want %v", d.Addr, wantAddr)
			}
			if d.Profile != tc.profile {
				t.Errorf("Profile = %q, want %q", d.Profile, tc.profile)
			}
			if d.RTCPMux != tc.mux {
				t.Errorf("RTCPMux = %v, want %v", d.RTCPMux, tc.mux)
			}
			if d.Ptime != tc.ptime {
				t.Errorf("Ptime = %d, want %d", d.Ptime, tc.ptime)
			}
			if d.Direction != tc.dir {
				t.Errorf("Direction = %q, want %q", d.Direction, tc.dir)
			}
			if got := fmtList(d.Codecs); got != tc.codecs {
				t.Errorf("Codecs = %q, want %q", got, tc.codecs)
			}
			if got := fmtList(d.TelephoneEvents); got != tc.te {
				t.Errorf("TelephoneEvents = %q, want %q", got, tc.te)
			}
			if got := fmtList(d.Formats); got != tc.formats {
				t.Errorf("Formats = %q, want %q", got, tc.formats)
			}
			if len(d.Crypto) != tc.crypto {
				t.Errorf("len(Crypto) = %d, want %d", len(d.Crypto), tc.crypto)
			}
			if len(d.MediaLines) != tc.lines {
				t.Errorf("len(MediaLines) = %d, want %d", len(d.MediaLines), tc.lines)
			} else if !d.MediaLines[tc.mediaLine].Active {
				t.Errorf("MediaLines[%d] not active: %+v", tc.mediaLine, d.MediaLines)
			}
			for pt := 0; pt < 128; pt++ {
				if want := pt == tc.fecPT; d.OpusFEC(uint8(pt)) != want {
					t.Errorf("OpusFEC(%d) = %v, want %v", pt, !want, want)
				}
			}
		})
	}
}

func TestParseCryptoValuesRawInOrder(t *testing.T) {
	d := mustParse(t, savpOffer)
	want := []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
		"2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
	}
	if !reflect.DeepEqual(d.Crypto, want) {
		t.Errorf("Crypto = %q, want %q", d.Crypto, want)
	}
}

func TestParseFmtpMap(t *testing.T) {
	d := mustParse(t, freeswitchOffer)
	if got, want := d.Fmtp[102], "useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40"; got != want {
		t.Errorf("Fmtp[102] = %q, want %q", got, want)
	}
	if got := d.Fmtp[101]; got != "0-16" {
		t.Errorf("Fmtp[101] = %q, want 0-16", got)
	}
	if _, ok := d.Fmtp[0]; ok {
		t.Error("Fmtp[0] present, offer has none")
	}
}

// TestParseLineEndings checks that CRLF, LF and CR-only input parse alike.
func TestParseLineEndings(t *testing.T) {
	want := mustParse(t, asteriskOffer)
	for name, text := range map[string]string{
		"LF":         strings.ReplaceAll(asteriskOffer, "\r\n", "\n"),
		"CR":         strings.ReplaceAll(asteriskOffer, "\r\n", "\r"),
		"no final":   strings.TrimSuffix(asteriskOffer, "\r\n"),
		"blank+BOM":  "\xef\xbb\xbf" + strings.ReplaceAll(asteriskOffer, "\r\n", "\r\n\r\n"),
		"whitespace": strings.ReplaceAll(asteriskOffer, "\r\n", " \t\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			got := mustParse(t, text)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseMerge(t *testing.T) {
	// Two audio sections (the SDES "best effort" twin-m-line pattern): PT
	// lists merge; port, profile, c= and crypto come from the last one.
	sdp := crlf(`
v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 5000 RTP/SAVP 8 101
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtcp-mux
m=video 5002 RTP/AVP 31
m=audio 5004 RTP/AVP 0 8
c=IN IP4 192.0.2.2
a=sendonly
`)
	d := mustParse(t, sdp)
	if got, want := fmtList(d.Formats), "8:PCMA/8000 101:telephone-event/8000 0:PCMU/8000"; got != want {
		t.Errorf("Formats = %q, want %q", got, want)
	}
	if d.Addr != netip.MustParseAddrPort("192.0.2.2:5004") || d.Profile != ProfileAVP {
		t.Errorf("Addr/Profile = %v %v, want last section's", d.Addr, d.Profile)
	}
	if len(d.Crypto) != 0 || d.RTCPMux || d.Direction != SendOnly {
		t.Errorf("attributes of the first section leaked: crypto %q mux %v dir %v", d.Crypto, d.RTCPMux, d.Direction)
	}
	var active []int
	for i, ml := range d.MediaLines {
		if ml.Active {
			active = append(active, i)
		}
	}
	if !reflect.DeepEqual(active, []int{2}) {
		t.Errorf("active m= lines = %v, want [2]", active)
	}
}

func TestParseRecognition(t *testing.T) {
	tests := []struct {
		name    string
		mline   string
		attrs   string
		codecs  string
		te      string
		formats string
	}{
		{"dynamic without rtpmap is skipped", "96 97", "a=rtpmap:97 PCMA/8000", "97:PCMA/8000", "", "96:96/0 97:PCMA/8000"},
		{"static without rtpmap", "0 8 9 18", "", "0:PCMU/8000 8:PCMA/8000 9:G722/8000", "", "0:PCMU/8000 8:PCMA/8000 9:G722/8000 18:G729/0"},
		{"case-insensitive names", "100 101 102", "a=rtpmap:100 g722/8000\na=rtpmap:101 Telephone-Event/8000\na=rtpmap:102 Opus/48000", "100:G722/8000 102:opus/48000", "101:telephone-event/8000", "100:G722/8000 101:telephone-event/8000 102:opus/48000"},
		{"wrong clocks are not ours", "96 97 98", "a=rtpmap:96 opus/16000\na=rtpmap:97 G722/16000\na=rtpmap:98 PCMU/16000", "", "", "96:opus/16000 97:G722/16000 98:PCMU/16000"},
		{"stereo G.711 is not ours", "96 97", "a=rtpmap:96 PCMU/8000/2\na=rtpmap:97 opus/48000/2", "97:opus/48000", "", "96:PCMU/8000 97:opus/48000"},
		{"telephone-event on a static PT is ignored", "0 13", "a=rtpmap:13 telephone-event/8000", "0:PCMU/8000", "", "0:PCMU/8000 13:telephone-event/8000"},
		{"duplicate PTs merged", "0 0 8 0", "", "0:PCMU/8000 8:PCMA/8000", "", "0:PCMU/8000 8:PCMA/8000"},
		{"junk formats skipped", "0 x 200 -1 8", "", "0:PCMU/8000 8:PCMA/8000", "", "0:PCMU/8000 8:PCMA/8000"},
		{"first rtpmap wins", "96", "a=rtpmap:96 PCMA/8000\na=rtpmap:96 PCMU/8000", "96:PCMA/8000", "", "96:PCMA/8000"},
		{"bad rtpmaps ignored", "96 97 98 99", "a=rtpmap:96\na=rtpmap:97 opus\na=rtpmap:98 opus/0\na=rtpmap:99 op<us/48000", "", "", "96:96/0 97:97/0 98:98/0 99:99/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP " + tc.mline + "\r\n" + tc.attrs + "\r\n"
			d := mustParse(t, sdp)
			if got := fmtList(d.Codecs); got != tc.codecs {
				t.Errorf("Codecs = %q, want %q", got, tc.codecs)
			}
			if got := fmtList(d.TelephoneEvents); got != tc.te {
				t.Errorf("TelephoneEvents = %q, want %q", got, tc.te)
			}
			if got := fmtList(d.Formats); got != tc.formats {
				t.Errorf("Formats = %q, want %q", got, tc.formats)
			}
		})
	}
}

func TestParseCaps(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	t.Run("32 payload types", func(t *testing.T) {
		var pts, maps []string
		for pt := 96; pt < 127; pt++ { // 31 dynamic ones …
			pts = append(pts, fmt.Sprint(pt))
			maps = append(maps, fmt.Sprintf("a=rtpmap:%d PCMA/8000", pt))
		}
		pts = append(pts, "0", "8") // … PCMU is the 32nd, PCMA the 33rd
		d := mustParse(t, head+"m=audio 5000 RTP/AVP "+strings.Join(pts, " ")+"\r\n"+strings.Join(maps, "\r\n")+"\r\n")
		if len(d.Formats) != 32 {
			t.Fatalf("len(Formats) = %d, want 32", len(d.Formats))
		}
		if last := d.Formats[31]; last.PT != 0 {
			t.Errorf("32nd format = %d, want 0", last.PT)
		}
	})
	t.Run("32 rtpmaps", func(t *testing.T) {
		var maps []string
		for pt := 64; pt < 96; pt++ { // 32 rtpmaps for PTs not in the m= line
			maps = append(maps, fmt.Sprintf("a=rtpmap:%d PCMU/8000", pt))
		}
		maps = append(maps, "a=rtpmap:96 PCMU/8000") // the 33rd is not read
		d := mustParse(t, head+"m=audio 5000 RTP/AVP 96\r\n"+strings.Join(maps, "\r\n")+"\r\n")
		if len(d.Codecs) != 0 {
			t.Errorf("Codecs = %q, want none: the 33rd rtpmap must be ignored", fmtList(d.Codecs))
		}
	})
	t.Run("too many lines", func(t *testing.T) {
		_, err := Parse([]byte(head + "m=audio 5000 RTP/AVP 0\r\n" + strings.Repeat("a=x\r\n", maxLines)))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "lines") {
			t.Errorf("err = %v, want too many lines", err)
		}
	})
	t.Run("too many m= lines", func(t *testing.T) {
		_, err := Parse([]byte(head + strings.Repeat("m=audio 5000 RTP/AVP 0\r\n", maxMediaLines+1)))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "m= lines") {
			t.Errorf("err = %v, want too many m= lines", err)
		}
	})
}

func TestParseErrors(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
	tests := map[string]string{
		"empty":              "",
		"blank":              "\r\n \r\n",
		"not SDP":            "hello world",
		"v=1":                "v=1\r\nm=audio 5000 RTP/AVP 0\r\n",
		"second v=":          head + "v=0\r\nm=audio 5000 RTP/AVP 0\r\n",
		"no audio":           head + "m=video 5000 RTP/AVP 31\r\n",
		"audio not RTP":      head + "m=audio 5000 TCP/MRCPv2 0\r\n",
		"unknown line type":  head + "x=1\r\nm=audio 5000 RTP/AVP 0\r\n",
		"no equals":          head + "m=audio 5000 RTP/AVP 0\r\nrtpmap\r\n",
		"short m=":           head + "m=audio 5000\r\n",
		"bad port":           head + "m=audio 70000 RTP/AVP 0\r\n",
		"negative port":      head + "m=audio -1 RTP/AVP 0\r\n",
		"bad m= token":       head + "m=au\x00dio 5000 RTP/AVP 0\r\n",
		"hostname c=":        head + "m=audio 5000 RTP/AVP 0\r\nc=IN IP4 pbx.example.com\r\n",
		"bad c= nettype":     head + "m=audio 5000 RTP/AVP 0\r\nc=XX IP4 192.0.2.1\r\n",
		"bad session c=":     "v=0\r\nc=IN IP9 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
		"bad proto for pion": head + "m=audio 5000 RTP/AVP/TCP 0\r\n",
	}
	for name, sdp := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := Parse([]byte(sdp))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", d)
			}
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "invalid SDP: ") {
				t.Errorf("err = %q, want it to wrap ErrInvalid", err)
			}
		})
	}
}

func TestParseUnspecifiedAndMulticastAddress(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
	for c, want := range map[string]string{
		"c=IN IP4 0.0.0.0":          "",
		"c=IN IP6 ::":               "",
		"c=IN IP4 233.252.0.1/127":  "233.252.0.1:5000",
		"c=IN IP6 ::ffff:192.0.2.5": "192.0.2.5:5000",
		"c=IN IP4":                  "",
	} {
		d := mustParse(t, head+c+"\r\n")
		var w netip.AddrPort
		if want != "" {
			w = netip.MustParseAddrPort(want)
		}
		if d.Addr != w {
			t.Errorf("%s: Addr = %v, want %v", c, d.Addr, w)
		}
	}
}

func TestIsWebRTC(t *testing.T) {
	tests := map[string]bool{
		webrtcOffer:   true,
		asteriskOffer: false,
		savpOffer:     false,
		"v=0\nm=audio 1 RTP/AVP 0\na=ice-ufrag:abcd\n": true,
		"v=0\ra=fingerprint:sha-256 AA\r":              true,
		"v=0\r\nx a=fingerprint:sha-256 AA\r\n":        false,
		"a=ice-ufrag":                                  false, // no colon
		"":                                             false,
	}
	for sdp, want := range tests {
		if got := IsWebRTC([]byte(sdp)); got != want {
			t.Errorf("IsWebRTC(%.40q) = %v, want %v", sdp, got, want)
		}
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize(make([]byte, 1024), 1024); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	err := CheckSize(make([]byte, 1025), 1024)
	if err == nil || err.Error() != "SDP too large" || !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want exactly \"SDP too large\"", err)
	}
}

// TestParseTruncated parses every prefix of the corpus: each must either
// parse or fail cleanly.
func TestParseTruncated(t *testing.T) {
	for _, s := range seedCorpus() {
		for i := range len(s) {
			if d, err := Parse([]byte(s[:i])); err == nil && d == nil {
				t.Fatalf("prefix %d of %.30q: nil Description without error", i, s)
			}
		}
	}
}

func TestParseSkipsDisabledSections(t *testing.T) {
	d := mustParse(t, "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\nm=audio 5000 RTP/AVP 8\r\n")
	if got := fmtList(d.Formats); got != "8:PCMA/8000" {
		t.Errorf("Formats = %q, want the port-0 section left out", got)
	}
	d = mustParse(t, "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 8\r\nm=audio 0 RTP/AVP 0\r\n")
	if got := fmtList(d.Formats); got != "8:PCMA/8000 0:PCMU/8000" || d.Addr.IsValid() {
		t.Errorf("Formats = %q Addr %v, want both sections merged, the last (port 0) active", got, d.Addr)
	}
}

// a=rtcp (RFC 3605) gives the RTCP destination: port only (the RTP host), or with its own
// address; unusable values are ignored.
func TestParseRTCPAttribute(t *testing.T) {
	base := "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	for _, tc := range []struct{ attr, want string }{
		{"", ""},
		{"a=rtcp:40011\r\n", "192.0.2.10:40011"},
		{"a=rtcp:53020 IN IP4 198.51.100.7\r\n", "198.51.100.7:53020"},
		{"a=rtcp:53020 IN IP6 2001:db8::7\r\n", "[2001:db8::7]:53020"},
		{"a=rtcp:0\r\n", ""},
		{"a=rtcp:70000\r\n", ""},
		{"a=rtcp:junk\r\n", ""},
		{"a=rtcp:5000 IN IP4 0.0.0.0\r\n", ""},
		{"a=rtcp:5000 IN IP4 nothost\r\n", ""},
	} {
		d := mustParse(t, base+tc.attr)
		got := ""
		if d.RTCPAddr.IsValid() {
			got = d.RTCPAddr.String()
		}
		if got != tc.want {
			t.Errorf("%q: RTCPAddr %q, want %q", tc.attr, got, tc.want)
		}
	}
	if d := mustParse(t, strings.Replace(base, "m=audio 40000", "m=audio 0", 1)+"a=rtcp:40011\r\n"); d.RTCPAddr.IsValid() {
		t.Errorf("a=rtcp used for a disabled stream: %v", d.RTCPAddr)
	}
}

package sdp

import (
	"strings"
	"testing"
	"time"
)

// TestParseHostileSizes feeds large adversarial inputs (10 MB, the largest
// max_sdp_size_kb allows) and checks Parse stays fast and bounded.
func TestParseHostileSizes(t *testing.T) {
	const size = 10000 * 1024
	head := "v=0\r\nc=IN IP4 192.0.2.1\r\n"
	inputs := map[string]string{
		"newlines":      "v=0" + strings.Repeat("\n", size),
		"many lines":    head + strings.Repeat("a=x\r\n", size/5),
		"huge m= line":  head + "m=audio 5000 RTP/AVP" + strings.Repeat(" 0", size/2),
		"huge crypto":   head + "m=audio 5000 RTP/AVP 0\r\n" + strings.Repeat("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+strings.Repeat("A", size/40)+"\r\n", 30),
		"huge c=":       head + "m=audio 5000 RTP/AVP 0\r\nc=IN IP4 " + strings.Repeat("1", size) + "\r\n",
		"huge rtpmap":   head + "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 " + strings.Repeat("x", size) + "/8000\r\n",
		"one long line": "v=0\r\n" + strings.Repeat("a", size),
	}
	for name, in := range inputs {
		start := time.Now()
		d, err := Parse([]byte(in))
		if el := time.Since(start); el > 30*time.Second { // linear work takes well under 1 s; quadratic would take hours
			t.Errorf("%s: took %v", name, el)
		}
		if err == nil && len(d.Formats) > maxPayloadTypes {
			t.Errorf("%s: %d formats", name, len(d.Formats))
		}
		IsWebRTC([]byte(in))
	}
}

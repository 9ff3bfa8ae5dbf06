package config

import "testing"

func TestValidateWebRTCPortRange(t *testing.T) {
	set := func(a, b int) func(*Config) {
		return func(c *Config) { c.WebRTCPortRange = [2]int{a, b} }
	}
	runValidationCases(t, []validationCase{
		{"unset", set(0, 0), "", ""},
		{"odd start allowed", set(40001, 40001), "", ""},
		{"start > end", set(40010, 40000), "webrtc_port_range", "config: webrtc_port_range = [40010, 40000]: start must be <= end"},
		{"below 1024", set(80, 90), "webrtc_port_range", "[80, 90]: start and end must both be >= 1024 ([0, 0] means unset)"},
		{"end above 65535", set(40000, 65536), "webrtc_port_range", "[40000, 65536]: end must be <= 65535"},
		{"end 65535", set(40000, 65535), "", ""},
	})
}

func TestLoadWebRTCPortRangeShape(t *testing.T) {
	for _, v := range []string{`"40000-40999"`, `[40000]`, `[40000.5, 40999]`} {
		p := writeFile(t, "webrtc_port_range = "+v+"\n")
		if _, err := LoadFile(p); err == nil {
			t.Errorf("webrtc_port_range = %s loaded", v)
		}
	}
}

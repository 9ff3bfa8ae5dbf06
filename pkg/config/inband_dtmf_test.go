package config

import "testing"

// TestValidateInbandDTMF: inband_dtmf (PROTOCOL.md §31) takes "auto" (the default),
// "always" or "off".
func TestValidateInbandDTMF(t *testing.T) {
	if d := Default().InbandDTMF; d != "auto" {
		t.Fatalf("default inband_dtmf = %q", d)
	}
	set := func(s string) func(*Config) { return func(c *Config) { c.InbandDTMF = s } }
	runValidationCases(t, []validationCase{
		{"auto", set("auto"), "", ""},
		{"always", set("always"), "", ""},
		{"off", set("off"), "", ""},
		{"empty", set(""), "inband_dtmf", `config: inband_dtmf = "": must be "auto", "always" or "off"`},
		{"upper case", set("AUTO"), "inband_dtmf", `inband_dtmf = "AUTO"`},
	})
}

package config

import (
	"log/slog"
	"strings"
	"testing"
)

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		filter string
		want   slog.Level
	}{
		{"trace", slog.LevelDebug},
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"off", LevelOff},
		{"INFO", slog.LevelInfo},
		{" Warn ", slog.LevelWarn},
		{"info,", slog.LevelInfo},
		{"warn,rtpbridge=debug", slog.LevelDebug},
		{"rtpbridge=error,debug", slog.LevelError},
		{"rtpbridge=trace", slog.LevelDebug},
		{"debug,rtpbridge=off", LevelOff},
		{"info,rtpbridge=warn,rtpbridge=error", slog.LevelError},              // last wins
		{"error,rtpbridge::session=debug", slog.LevelDebug},                   // module directive
		{"error,rtpbridge::a=warn,rtpbridge::b=debug", slog.LevelDebug},       // most verbose module
		{"rtpbridge::a=debug,rtpbridge=warn", slog.LevelWarn},                 // crate beats module
		{"warn,hyper=debug,webrtc_ice=trace", slog.LevelWarn},                 // other targets ignored
		{"rtp=debug,info", slog.LevelInfo},                                    // a mere prefix is another target
		{"info,rtpbridge[session{id=1}]=debug", slog.LevelInfo},               // span directives ignored
		{"[span]=trace,error", slog.LevelError},                               // span without target
		{"hyper=debug", LevelOff},                                             // nothing enables rtpbridge
		{"warn, rtpbridge = debug ", slog.LevelDebug},                         // blanks around parts
		{"tower_http::trace=debug,my-crate.x=info,warn", slog.LevelWarn},      // target characters
		{"rtpbridge=info,rtpbridge::control=debug,error", slog.LevelInfo},     // crate directive wins
		{"error,rtpbridge::control=debug,rtpbridge=info", slog.LevelInfo},     // regardless of order
		{"off,rtpbridge::control=warn", slog.LevelWarn},                       // module over default
		{"debug,rtpbridge::control=error", slog.LevelError},                   // module over default
		{"warn,rtpbridge::control=error,rtpbridge::x=info", slog.LevelInfo},   // most verbose module
		{"warn,rtpbridge::control=error,rtpbridge::x=error", slog.LevelError}, // both error
	}
	for _, tc := range tests {
		got, err := ParseLogLevel(tc.filter)
		if err != nil {
			t.Errorf("ParseLogLevel(%q): %v", tc.filter, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLogLevel(%q) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestParseLogLevelInvalid(t *testing.T) {
	tests := []struct {
		filter, msg string
	}{
		{"", "empty"},
		{" , ", "empty"},
		{"inf", `unknown level "inf"`},
		{"warning", `unknown level "warning"`},
		{"rtpbridge", `unknown level "rtpbridge"`}, // bare target: stricter than the original
		{"3", `unknown level "3"`},
		{"rtpbridge=", `unknown level ""`},
		{"rtpbridge=loud", `unknown level "loud"`},
		{"=debug", "empty target"},
		{"rtp bridge=debug", "invalid character ' '"},
		{"rtpbridge[span=debug", "unterminated span filter"},
		{"info,rtpbridge=debug,hyper=verbose", `directive "hyper=verbose": unknown level "verbose"`},
	}
	for _, tc := range tests {
		_, err := ParseLogLevel(tc.filter)
		if err == nil {
			t.Errorf("ParseLogLevel(%q): want error", tc.filter)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseLogLevel(%q) = %q, want it to contain %q", tc.filter, err, tc.msg)
		}
	}
}

func TestLevelOffSilencesHandler(t *testing.T) {
	var b strings.Builder
	h := slog.NewTextHandler(&b, &slog.HandlerOptions{Level: LevelOff})
	slog.New(h).Error("must not appear")
	if b.Len() != 0 {
		t.Errorf("LevelOff handler logged %q", b.String())
	}
}

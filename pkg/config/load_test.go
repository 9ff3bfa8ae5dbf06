package config

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to a fresh .toml file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rtpbridge.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileEveryKey(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, `
listen = "127.0.0.1:9200, [::1]:9201"
media_ip = "192.0.2.7"
rtp_port_range = [20000, 20999]
webrtc_port_range = [21000, 21999]
rtp_source_networks = ["10.0.0.0/8", "192.0.2.17"]
disconnect_timeout_secs = 31
shutdown_max_wait_secs = 301
media_dir = "`+dir+`"
recording_dir = "`+dir+`/rec"
cache_dir = "`+dir+`/cache"
cache_cleanup_interval_secs = 301
max_concurrent_downloads = 17
max_sessions = 10001
max_endpoints_per_session = 21
max_recordings_per_session = 101
recording_flush_timeout_secs = 11
ws_max_message_size_kb = 257
max_sdp_size_kb = 65
session_idle_timeout_secs = 1
empty_session_timeout_secs = 2
media_timeout_secs = 6
max_connections = 1001
ws_ping_interval_secs = 31
event_channel_size = 257
critical_event_channel_size = 65
transcode_cache_size = 65
max_file_download_bytes = 104857601
file_download_origins = ["https://media.example.com"]
file_download_networks = ["10.1.0.0/16"]
max_cache_entries = 1001
max_cache_bytes = 1073741825
max_recording_download_bytes = 536870913
recording_channel_size = 1001
log_level = "warn,rtpbridge=debug"
opus_complexity = 5
ws_audio_buffer_ms = 30000
inband_dtmf = "always"
`)
	got, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:                    []string{"127.0.0.1:9200", "[::1]:9201"},
		MediaIP:                   netip.MustParseAddr("192.0.2.7"),
		RTPPortRange:              [2]int{20000, 20999},
		WebRTCPortRange:           [2]int{21000, 21999},
		RTPSourceNetworks:         []string{"10.0.0.0/8", "192.0.2.17"},
		DisconnectTimeoutSecs:     31,
		ShutdownMaxWaitSecs:       301,
		MediaDir:                  dir,
		RecordingDir:              dir + "/rec",
		CacheDir:                  dir + "/cache",
		CacheCleanupIntervalSecs:  301,
		MaxConcurrentDownloads:    17,
		MaxSessions:               10001,
		MaxEndpointsPerSession:    21,
		MaxRecordingsPerSession:   101,
		RecordingFlushTimeoutSecs: 11,
		WSMaxMessageSizeKB:        257,
		MaxSDPSizeKB:              65,
		SessionIdleTimeoutSecs:    1,
		EmptySessionTimeoutSecs:   2,
		MediaTimeoutSecs:          6,
		MaxConnections:            1001,
		WSPingIntervalSecs:        31,
		EventChannelSize:          257,
		CriticalEventChannelSize:  65,
		TranscodeCacheSize:        65,
		MaxFileDownloadBytes:      104857601,
		FileDownloadOrigins:       []string{"https://media.example.com"},
		FileDownloadNetworks:      []string{"10.1.0.0/16"},
		MaxCacheEntries:           1001,
		MaxCacheBytes:             1073741825,
		MaxRecordingDownloadBytes: 536870913,
		RecordingChannelSize:      1001,
		LogLevel:                  "warn,rtpbridge=debug",
		OpusComplexity:            5,
		WSAudioBufferMs:           30000,
		InbandDTMF:                "always",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadFile:\n got %+v\nwant %+v", got, want)
	}
	// Every key must differ from its default above, or this test would
	// not prove the key is read at all.
	def := reflect.ValueOf(*Default())
	w := reflect.ValueOf(*want)
	for i := range def.NumField() {
		if reflect.DeepEqual(def.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("field %s equals its default; pick another value", def.Type().Field(i).Name)
		}
	}
	if len(KeyNames()) != def.NumField() {
		t.Errorf("KeyNames has %d keys, Config has %d fields", len(KeyNames()), def.NumField())
	}
}

func TestLoadFileEmptyIsDefault(t *testing.T) {
	got, err := LoadFile(writeFile(t, "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("empty file: got %+v, want defaults", got)
	}
}

func TestLoadFileUnknownKey(t *testing.T) {
	tests := []struct {
		name, content, key, suggestion string
	}{
		{"typo", "max_sesions = 5\n", "max_sesions", "max_sessions"},
		{"case differs", `Listen = "127.0.0.1:1"` + "\n", "Listen", "listen"},
		{"far from any key", "colour = 1\n", "colour", ""},
		{"table", "[server]\nlisten = \"127.0.0.1:1\"\n", "server", ""},
		{"after known keys", "listen = \"127.0.0.1:1\"\nmedia_tmeout_secs = 3\n", "media_tmeout_secs", "media_timeout_secs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := LoadFile(p)
			var uk *UnknownKeyError
			if !errors.As(err, &uk) {
				t.Fatalf("want *UnknownKeyError, got %v", err)
			}
			if uk.Key != tc.key || uk.Suggestion != tc.suggestion || uk.File != p {
				t.Errorf("got key %q suggestion %q file %q, want %q %q %q", uk.Key, uk.Suggestion, uk.File, tc.key, tc.suggestion, p)
			}
			wantMsg := `config: unknown key "` + tc.key + `" in ` + p
			if !strings.HasPrefix(err.Error(), wantMsg) {
				t.Errorf("message %q does not start with %q", err, wantMsg)
			}
		})
	}

	// Every unknown key is reported, not just the first.
	_, err := LoadFile(writeFile(t, "aaa = 1\nbbb = 2\n"))
	if err == nil || !strings.Contains(err.Error(), `"aaa"`) || !strings.Contains(err.Error(), `"bbb"`) {
		t.Errorf("want both unknown keys reported, got %v", err)
	}
}

func TestLoadFileWrongTypes(t *testing.T) {
	tests := []struct {
		name, content, key, msg string
	}{
		{"listen array", `listen = ["0.0.0.0:9100"]`, "listen", `listen = ["0.0.0.0:9100"] in %s: must be a string (comma-separated ip:port list), not an array`},
		{"listen integer", `listen = 9100`, "listen", "must be a string (comma-separated ip:port list), not an integer"},
		{"media_ip integer", `media_ip = 1`, "media_ip", "must be a string holding an IP address, not an integer"},
		{"media_ip not an IP", `media_ip = "my.host"`, "media_ip", `media_ip = "my.host" in %s: must be an IP address (v4 or v6): parsing IP address`},
		{"source networks string", `rtp_source_networks = "*"`, "rtp_source_networks", "must be an array of strings"},
		{"source networks number", `rtp_source_networks = [10]`, "rtp_source_networks", "must be an array of strings"},
		{"port range string", `rtp_port_range = "30000-39999"`, "rtp_port_range", "must be an array of two integers [start, end]"},
		{"port range three", `rtp_port_range = [1, 2, 3]`, "rtp_port_range", "[1, 2, 3] in %s: must be an array of two integers"},
		{"port range float", `rtp_port_range = [30000.0, 39999]`, "rtp_port_range", "must be an array of two integers"},
		{"int as string", `max_sessions = "10"`, "max_sessions", `max_sessions = "10" in %s: must be an integer, not a string`},
		{"int as float", `media_timeout_secs = 2.5`, "media_timeout_secs", "must be an integer, not a float"},
		{"int as bool", `opus_complexity = true`, "opus_complexity", "must be an integer, not a boolean"},
		{"int64 as string", `max_file_download_bytes = "1MB"`, "max_file_download_bytes", "must be an integer, not a string"},
		{"string as int", `log_level = 3`, "log_level", "must be a string, not an integer"},
		{"dir as table", `media_dir = {path = "/x"}`, "media_dir", `media_dir = {path = "/x"} in %s: must be a string, not a table`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content+"\n")
			_, err := LoadFile(p)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("want *KeyError, got %v", err)
			}
			if ke.Key != tc.key {
				t.Errorf("key = %q, want %q", ke.Key, tc.key)
			}
			msg := strings.ReplaceAll(tc.msg, "%s", p)
			if !strings.Contains(err.Error(), msg) {
				t.Errorf("message %q does not contain %q", err, msg)
			}
		})
	}
}

func TestLoadFileNegativesLoadThenFailValidation(t *testing.T) {
	// Negative values have the right TOML type, so LoadFile takes them;
	// Validate (and so Load) must reject them naming the key.
	c, err := LoadFile(writeFile(t, "max_connections = -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.RecordingDir, c.CacheDir = t.TempDir(), t.TempDir()
	_, err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_connections = -1: must not be negative") {
		t.Fatalf("want max_connections negative error, got %v", err)
	}
}

func TestLoadFileUnreadableOrMalformed(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), "config: reading "+missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
	p := writeFile(t, "listen = \n")
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "config: parsing "+p) {
		t.Errorf("malformed file: got %v", err)
	}
}

// hermeticFile writes a config file whose directories live in a test
// directory, plus extra lines, and returns its path.
func hermeticFile(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	return writeFile(t, `recording_dir = "`+dir+`/rec"`+"\n"+`cache_dir = "`+dir+`/cache"`+"\n"+extra)
}

func TestLoadFlagsOverrideFile(t *testing.T) {
	file := hermeticFile(t, `
listen = "127.0.0.1:9300"
media_ip = "192.0.2.1"
log_level = "warn"
`)
	tests := []struct {
		name                  string
		args                  []string
		listen, mediaIP, logs string
	}{
		{"file only", []string{"-c", file}, "127.0.0.1:9300", "192.0.2.1", "warn"},
		{"long flags", []string{"--config", file, "--listen", "127.0.0.1:9400,127.0.0.1:9401", "--media-ip", "192.0.2.2", "--log-level", "debug"},
			"127.0.0.1:9400,127.0.0.1:9401", "192.0.2.2", "debug"},
		{"short flags", []string{"-c", file, "-l", "127.0.0.1:9500", "-m", "2001:db8::5"}, "127.0.0.1:9500", "2001:db8::5", "warn"},
		{"equals form", []string{"--config=" + file, "--listen=127.0.0.1:9600", "-log-level=error"}, "127.0.0.1:9600", "192.0.2.1", "error"},
		{"flags before config", []string{"-m", "192.0.2.3", "-c", file}, "127.0.0.1:9300", "192.0.2.3", "warn"},
		{"last of short and long wins", []string{"-c", file, "-l", "127.0.0.1:1", "--listen", "127.0.0.1:2"}, "127.0.0.1:2", "192.0.2.1", "warn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Load(tc.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.Listen, ","); got != tc.listen {
				t.Errorf("listen = %q, want %q", got, tc.listen)
			}
			if got := cfg.MediaIP.String(); got != tc.mediaIP {
				t.Errorf("media_ip = %q, want %q", got, tc.mediaIP)
			}
			if cfg.LogLevel != tc.logs {
				t.Errorf("log_level = %q, want %q", cfg.LogLevel, tc.logs)
			}
		})
	}
}

func TestLoadWithoutConfigFile(t *testing.T) {
	// Without --config the defaults apply, including the default
	// directories; skip rather than fail if this host has them unusable.
	if _, err := Default().Validate(); err != nil {
		t.Skipf("defaults do not validate on this host: %v", err)
	}
	cfg, warnings, err := Load([]string{"--listen", "127.0.0.1:9700"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen = []string{"127.0.0.1:9700"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want defaults with listen overridden", cfg)
	}
	// The default media_ip is loopback, and the default range has fewer
	// port pairs than the default max_sessions: both warn.
	if len(warnings) != 2 || !strings.Contains(warnings[0], "loopback") || !strings.Contains(warnings[1], "5000 RTP port pairs") {
		t.Errorf("warnings = %q, want the loopback and port-pair warnings", warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	file := hermeticFile(t, "")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"bad media ip flag", []string{"-c", file, "-m", "nope"}, `config: media_ip (-m/--media-ip) = "nope": must be an IP address`},
		{"unspecified media ip flag", []string{"-c", file, "--media-ip", "0.0.0.0"}, `media_ip = "0.0.0.0": must not be unspecified`},
		{"empty listen flag", []string{"-c", file, "--listen", ""}, "listen = \"\": must contain at least one ip:port address"},
		{"bad listen flag", []string{"-c", file, "-l", "127.0.0.1"}, `entry "127.0.0.1" must be ip:port`},
		{"bad log level flag", []string{"-c", file, "--log-level", "loud"}, `log_level = "loud": must be a valid log filter`},
		{"unknown flag", []string{"--nope"}, "config: command line: flag provided but not defined: -nope"},
		{"missing value", []string{"-c"}, "config: command line: flag needs an argument: -c"},
		{"positional", []string{"-c", file, "extra"}, `config: command line: unexpected argument "extra"`},
		{"empty config path", []string{"--config", ""}, "config: -c/--config: empty path"},
		{"missing config file", []string{"-c", file + ".missing"}, "config: reading " + file + ".missing"},
		{"file invalid", []string{"-c", hermeticFile(t, "media_timeout_secs = 0\n")}, "config: media_timeout_secs = 0: must be between 1 and 300"},
		{"file unknown key", []string{"-c", hermeticFile(t, "bogus = 1\n")}, `config: unknown key "bogus"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Load(tc.args, nil)
			if err == nil {
				t.Fatalf("want error containing %q, got config %+v", tc.msg, cfg)
			}
			if cfg != nil {
				t.Errorf("config returned with error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func TestLoadFlagOverridesInvalidFileValue(t *testing.T) {
	// A flag replaces the file's value before validation, so a bad value in
	// the file is harmless when the command line overrides it.
	file := hermeticFile(t, `listen = "not-an-address"`+"\n")
	if _, _, err := Load([]string{"-c", file}, nil); err == nil {
		t.Fatal("file value must fail on its own")
	}
	cfg, _, err := Load([]string{"-c", file, "-l", "127.0.0.1:9800"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Listen, ","); got != "127.0.0.1:9800" {
		t.Errorf("listen = %q", got)
	}
}

func TestLoadWarnings(t *testing.T) {
	file := hermeticFile(t, "media_ip = \"::1\"\nmax_sessions = 0\n")
	_, warnings, err := Load([]string{"-c", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "loopback") || !strings.Contains(warnings[1], "max_sessions = 0") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestLoadHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			cfg, warnings, err := Load([]string{arg}, &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			if cfg != nil || warnings != nil {
				t.Errorf("help must return no config")
			}
			for _, want := range []string{"-l, --listen", "-m, --media-ip", "-c, --config", "--log-level", "-h, --help"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("usage lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
	// A nil writer must not panic.
	if _, _, err := Load([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("nil writer: err = %v", err)
	}
}

func TestSplitListen(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"0.0.0.0:9100", []string{"0.0.0.0:9100"}},
		{" 0.0.0.0:9100 , [::1]:9101,", []string{"0.0.0.0:9100", "[::1]:9101"}},
	}
	for _, tc := range tests {
		if got := SplitListen(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitListen(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMediaIPUnmapped(t *testing.T) {
	c, err := LoadFile(writeFile(t, `media_ip = "::ffff:192.0.2.9"`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MediaIP != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("media_ip = %v, want 192.0.2.9 (unmapped)", c.MediaIP)
	}
}

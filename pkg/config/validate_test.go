package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hermetic returns the defaults with the directories moved into a test
// directory, a non-loopback media_ip and max_sessions equal to the default
// range's 5000 port pairs, so it validates cleanly with no warnings and
// without touching the host's /var/lib or /tmp.
func hermetic(t *testing.T) *Config {
	t.Helper()
	c := Default()
	dir := t.TempDir()
	c.RecordingDir = filepath.Join(dir, "recordings")
	c.CacheDir = filepath.Join(dir, "cache")
	c.MediaIP = netip.MustParseAddr("192.0.2.10")
	c.MaxSessions = 5000
	return c
}

// keyErrors flattens an errors.Join tree into its *KeyError leaves, failing
// the test on any other kind of error.
func keyErrors(t *testing.T, err error) []*KeyError {
	t.Helper()
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*KeyError
		for _, e := range j.Unwrap() {
			out = append(out, keyErrors(t, e)...)
		}
		return out
	}
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("error %q (%T) is not a *KeyError", err, err)
	}
	return []*KeyError{ke}
}

func TestHermeticDefaultsValidate(t *testing.T) {
	warnings, err := hermetic(t).Validate()
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings = %q, want none", warnings)
	}
}

type validationCase struct {
	name    string
	mutate  func(*Config)
	wantKey string // "" means the config must be valid
	wantMsg string // substring of the error message
}

func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := hermetic(t)
			tc.mutate(c)
			_, err := c.Validate()
			kes := keyErrors(t, err)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if len(kes) == 0 {
				t.Fatalf("want an error for %s, got none", tc.wantKey)
			}
			// Every error must be about the key under test: nothing else
			// may break as a side effect.
			for _, ke := range kes {
				if ke.Key != tc.wantKey {
					t.Errorf("error key = %q, want %q (%v)", ke.Key, tc.wantKey, err)
				}
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestValidateListen(t *testing.T) {
	set := func(l ...string) func(*Config) { return func(c *Config) { c.Listen = l } }
	runValidationCases(t, []validationCase{
		{"none", set(), "listen", `listen = "": must contain at least one ip:port address`},
		{"no port", set("0.0.0.0"), "listen", `entry "0.0.0.0" must be ip:port`},
		{"port too big", set("0.0.0.0:65536"), "listen", `entry "0.0.0.0:65536" must be ip:port`},
		{"hostname", set("localhost:9100"), "listen", `entry "localhost:9100" must be ip:port`},
		{"second entry bad", set("127.0.0.1:9100", "x:1"), "listen", `listen = "127.0.0.1:9100,x:1": entry "x:1"`},
		{"one address", set("127.0.0.1:9100"), "", ""},
		{"port 0 and 65535", set("127.0.0.1:0", "127.0.0.1:65535"), "", ""},
		{"ipv6", set("[::1]:9100", "0.0.0.0:9101"), "", ""},
	})
}

func TestValidateMediaIP(t *testing.T) {
	set := func(s string) func(*Config) {
		return func(c *Config) {
			if s == "" {
				c.MediaIP = netip.Addr{}
				return
			}
			c.MediaIP = netip.MustParseAddr(s)
		}
	}
	runValidationCases(t, []validationCase{
		{"unset", set(""), "media_ip", "must be an IP address"},
		{"unspecified v4", set("0.0.0.0"), "media_ip", `media_ip = "0.0.0.0": must not be unspecified`},
		{"unspecified v6", set("::"), "media_ip", `media_ip = "::": must not be unspecified`},
		{"zone", set("fe80::1%eth0"), "media_ip", "must not carry an IPv6 zone"},
		{"v4", set("10.1.2.3"), "", ""},
		{"v6", set("2001:db8::1"), "", ""},
	})

	for _, ip := range []string{"127.0.0.1", "127.9.9.9", "::1"} {
		c := hermetic(t)
		c.MediaIP = netip.MustParseAddr(ip)
		warnings, err := c.Validate()
		if err != nil {
			t.Fatalf("loopback %s must only warn, got %v", ip, err)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "loopback") || !strings.Contains(warnings[0], ip) {
			t.Errorf("loopback %s: warnings = %q, want one loopback warning", ip, warnings)
		}
	}
}

func TestValidateRTPPortRange(t *testing.T) {
	set := func(a, b int) func(*Config) {
		return func(c *Config) { c.RTPPortRange = [2]int{a, b}; c.MaxSessions = 1 }
	}
	runValidationCases(t, []validationCase{
		{"start odd", set(30001, 39999), "rtp_port_range", "config: rtp_port_range = [30001, 39999]: start must be even"},
		{"start even", set(30002, 39999), "", ""},
		{"start > end", set(40000, 39998), "rtp_port_range", "[40000, 39998]: start must be <= end"},
		{"start below 1024", set(1022, 2000), "rtp_port_range", "[1022, 2000]: start and end must both be >= 1024"},
		{"start 1024", set(1024, 2000), "", ""},
		{"end above 65534", set(30000, 65535), "rtp_port_range", "[30000, 65535]: end must be <= 65534"},
		{"end 65534", set(30000, 65534), "", ""},
		{"start == end", set(30000, 30000), "rtp_port_range", "[30000, 30000]: end - start must be >= 1"},
		{"one pair", set(30000, 30001), "", ""},
	})
}

func TestValidateRTPSourceNetworks(t *testing.T) {
	set := func(nets ...string) func(*Config) {
		return func(c *Config) { c.RTPSourceNetworks = nets }
	}
	runValidationCases(t, []validationCase{
		{"any", set("*"), "", ""},
		{"empty: SDP address only", set(), "", ""},
		{"networks and addresses", set("10.0.0.0/8", "2001:db8::/32", "192.0.2.17"), "", ""},
		{"bad prefix", set("10.0.0.0/33"), "rtp_source_networks", `"10.0.0.0/33" is not "*", a CIDR prefix or an IP address`},
		{"hostname", set("sbc.example"), "rtp_source_networks", `each entry must be "*", a CIDR prefix or an IP address`},
	})
}

// intBound is one integer key with its PROTOCOL.md bounds, written out here
// independently of validate.go so that a wrong bound there fails a test.
type intBound struct {
	key    string
	field  func(*Config) *int
	lo, hi int // hi == math.MaxInt: no upper bound
}

// secsMax is the documented ceiling of every *_secs key.
const secsMax = 4611686018

func TestValidateIntegerBounds(t *testing.T) {
	bounds := []intBound{
		{"disconnect_timeout_secs", func(c *Config) *int { return &c.DisconnectTimeoutSecs }, 1, secsMax},
		{"shutdown_max_wait_secs", func(c *Config) *int { return &c.ShutdownMaxWaitSecs }, 1, secsMax},
		{"cache_cleanup_interval_secs", func(c *Config) *int { return &c.CacheCleanupIntervalSecs }, 1, secsMax},
		{"max_concurrent_downloads", func(c *Config) *int { return &c.MaxConcurrentDownloads }, 1, math.MaxInt},
		{"max_sessions", func(c *Config) *int { return &c.MaxSessions }, 0, math.MaxInt},
		{"max_endpoints_per_session", func(c *Config) *int { return &c.MaxEndpointsPerSession }, 0, math.MaxInt},
		{"max_recordings_per_session", func(c *Config) *int { return &c.MaxRecordingsPerSession }, 1, math.MaxInt},
		{"recording_flush_timeout_secs", func(c *Config) *int { return &c.RecordingFlushTimeoutSecs }, 1, secsMax},
		{"ws_max_message_size_kb", func(c *Config) *int { return &c.WSMaxMessageSizeKB }, 1, 512000},
		{"max_sdp_size_kb", func(c *Config) *int { return &c.MaxSDPSizeKB }, 1, 10000},
		{"session_idle_timeout_secs", func(c *Config) *int { return &c.SessionIdleTimeoutSecs }, 0, secsMax},
		{"empty_session_timeout_secs", func(c *Config) *int { return &c.EmptySessionTimeoutSecs }, 0, secsMax},
		{"media_timeout_secs", func(c *Config) *int { return &c.MediaTimeoutSecs }, 1, 300},
		{"max_connections", func(c *Config) *int { return &c.MaxConnections }, 0, math.MaxInt},
		{"ws_ping_interval_secs", func(c *Config) *int { return &c.WSPingIntervalSecs }, 1, secsMax},
		{"event_channel_size", func(c *Config) *int { return &c.EventChannelSize }, 1, math.MaxInt},
		{"critical_event_channel_size", func(c *Config) *int { return &c.CriticalEventChannelSize }, 1, math.MaxInt},
		{"transcode_cache_size", func(c *Config) *int { return &c.TranscodeCacheSize }, 1, math.MaxInt},
		{"recording_channel_size", func(c *Config) *int { return &c.RecordingChannelSize }, 1, math.MaxInt},
		{"opus_complexity", func(c *Config) *int { return &c.OpusComplexity }, 0, 10},
	}
	var cases []validationCase
	for _, b := range bounds {
		setTo := func(v int) func(*Config) {
			return func(c *Config) {
				*b.field(c) = v
				// Keep the port-pair warning out of the way of max_sessions.
				c.RTPPortRange = [2]int{1024, 65534}
			}
		}
		below := strconv.Itoa(b.lo - 1)
		cases = append(cases,
			validationCase{b.key + " below min", setTo(b.lo - 1), b.key, b.key + " = " + below + ": "},
			validationCase{b.key + " at min", setTo(b.lo), "", ""},
			validationCase{b.key + " at max", setTo(b.hi), "", ""},
		)
		if b.hi != math.MaxInt {
			above := strconv.Itoa(b.hi + 1)
			cases = append(cases, validationCase{b.key + " above max", setTo(b.hi + 1), b.key, b.key + " = " + above + ": "})
		}
	}
	runValidationCases(t, cases)

	// The exact wording for each kind of rule.
	runValidationCases(t, []validationCase{
		{"positive", func(c *Config) { c.DisconnectTimeoutSecs = 0 }, "disconnect_timeout_secs", "config: disconnect_timeout_secs = 0: must be > 0"},
		{"unsigned", func(c *Config) { c.MaxSessions = -1 }, "max_sessions", "config: max_sessions = -1: must not be negative"},
		{"unsigned secs", func(c *Config) { c.SessionIdleTimeoutSecs = -1 }, "session_idle_timeout_secs", "config: session_idle_timeout_secs = -1: must not be negative"},
		{"range", func(c *Config) { c.MediaTimeoutSecs = 301 }, "media_timeout_secs", "config: media_timeout_secs = 301: must be between 1 and 300"},
		{"secs ceiling", func(c *Config) { c.ShutdownMaxWaitSecs = secsMax + 1 }, "shutdown_max_wait_secs", "must be at most 4611686018 seconds"},
		{"opus", func(c *Config) { c.OpusComplexity = 11 }, "opus_complexity", "config: opus_complexity = 11: must be between 0 and 10"},
	})
}

func TestValidateInt64Keys(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"file bytes negative", func(c *Config) { c.MaxFileDownloadBytes = -1 }, "max_file_download_bytes", "max_file_download_bytes = -1: must not be negative"},
		{"file bytes zero", func(c *Config) { c.MaxFileDownloadBytes = 0 }, "", ""},
		{"file bytes max", func(c *Config) { c.MaxFileDownloadBytes = math.MaxInt64 }, "", ""},
		{"recording bytes negative", func(c *Config) { c.MaxRecordingDownloadBytes = -5 }, "max_recording_download_bytes", "max_recording_download_bytes = -5: must not be negative"},
		{"recording bytes zero", func(c *Config) { c.MaxRecordingDownloadBytes = 0 }, "", ""},
	})
}

func TestValidateLogLevel(t *testing.T) {
	set := func(s string) func(*Config) { return func(c *Config) { c.LogLevel = s } }
	runValidationCases(t, []validationCase{
		{"unknown word", set("verbose"), "log_level", `log_level = "verbose": must be a valid log filter`},
		{"empty", set(""), "log_level", `log_level = "": must be a valid log filter`},
		{"bad directive level", set("warn,rtpbridge=loud"), "log_level", `unknown level "loud"`},
		{"trace", set("trace"), "", ""},
		{"directives", set("warn,rtpbridge=debug"), "", ""},
	})
}

func TestValidateMediaDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.wav")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	set := func(s string) func(*Config) { return func(c *Config) { c.MediaDir = s } }
	runValidationCases(t, []validationCase{
		{"missing", set(missing), "media_dir", `media_dir = "` + missing + `": must be an existing directory`},
		{"a file", set(file), "media_dir", "it is not a directory"},
		{"unset", set(""), "", ""},
		{"existing", set(dir), "", ""},
	})
}

func TestValidateWritableDirs(t *testing.T) {
	for _, k := range []struct {
		key   string
		field func(*Config) *string
	}{
		{"recording_dir", func(c *Config) *string { return &c.RecordingDir }},
		{"cache_dir", func(c *Config) *string { return &c.CacheDir }},
	} {
		t.Run(k.key, func(t *testing.T) {
			base := t.TempDir()
			file := filepath.Join(base, "plain-file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			set := func(s string) func(*Config) { return func(c *Config) { *k.field(c) = s } }
			runValidationCases(t, []validationCase{
				{"parent missing", set(filepath.Join(base, "no", "dir")), k.key, `parent directory "` + filepath.Join(base, "no") + `" must exist`},
				{"parent is a file", set(filepath.Join(file, "dir")), k.key, "must exist: it is not a directory"},
				{"exists as file", set(file), k.key, "must be a directory"},
				{"empty", set(""), k.key, "must not be empty"},
				{"parent exists, dir missing", set(filepath.Join(base, "new")), "", ""},
				{"exists and writable", set(base), "", ""},
				{"trailing slash", set(base + "/"), "", ""},
			})
		})
	}
}

// TestWritabilityProbe checks the probe itself: it leaves nothing behind,
// survives a stale probe file, and fails on directories that cannot be
// written.
func TestWritabilityProbe(t *testing.T) {
	probe := func(dir string) string { return filepath.Join(dir, writeTestFile) }

	t.Run("leaves nothing behind", func(t *testing.T) {
		c := hermetic(t)
		c.RecordingDir = t.TempDir()
		if _, err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(probe(c.RecordingDir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("probe file left behind (stat: %v)", err)
		}
	})

	t.Run("stale probe file", func(t *testing.T) {
		c := hermetic(t)
		c.CacheDir = t.TempDir()
		if err := os.WriteFile(probe(c.CacheDir), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(probe(c.CacheDir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stale probe file not removed (stat: %v)", err)
		}
	})

	t.Run("read-only by permissions", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		// Restore write permission so t.TempDir's cleanup can remove it.
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		// Root (CAP_DAC_OVERRIDE) ignores permission bits, so 0555 does not
		// make the directory read-only for it: as root, the check runs in a
		// child process of this test binary under the unprivileged uid 65534.
		if f, err := os.Create(filepath.Join(dir, "canary")); err == nil {
			_ = f.Close()
			_ = os.Remove(filepath.Join(dir, "canary"))
			out := validateAsNobody(t, dir)
			if !strings.Contains(out, "recording_dir") || !strings.Contains(out, "must be writable") {
				t.Fatalf("as uid 65534: want a recording_dir must-be-writable error, got %q", out)
			}
			return
		}
		c := hermetic(t)
		c.RecordingDir = dir
		kes := keyErrors(t, func() error { _, err := c.Validate(); return err }())
		if len(kes) != 1 || kes[0].Key != "recording_dir" || kes[0].Rule != "must be writable" {
			t.Fatalf("want one recording_dir must-be-writable error, got %v", kes)
		}
	})

	t.Run("pseudo-filesystem", func(t *testing.T) {
		// Nobody, not even root, can create a file in procfs' root: a
		// directory that exists and is not writable, whatever the user.
		if fi, err := os.Stat("/proc"); err != nil || !fi.IsDir() {
			t.Skip("no /proc on this system")
		}
		c := hermetic(t)
		c.CacheDir = "/proc"
		_, err := c.Validate()
		kes := keyErrors(t, err)
		if len(kes) != 1 || kes[0].Key != "cache_dir" || kes[0].Rule != "must be writable" {
			t.Fatalf("want one cache_dir must-be-writable error, got %v", err)
		}
		if !strings.Contains(err.Error(), writeTestFile) {
			t.Errorf("error %q does not name the probe file", err)
		}
	})
}

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings, one per expected warning, in order
	}{
		{"none", func(*Config) {}, nil},
		{"max_sessions 0", func(c *Config) { c.MaxSessions = 0 }, []string{"max_sessions = 0"}},
		{"max_endpoints 0", func(c *Config) { c.MaxEndpointsPerSession = 0 }, []string{"max_endpoints_per_session = 0"}},
		{"max_connections 0 does not warn", func(c *Config) { c.MaxConnections = 0 }, nil},
		{"fewer pairs than sessions", func(c *Config) { c.RTPPortRange = [2]int{30000, 30009}; c.MaxSessions = 6 },
			[]string{"gives 5 RTP port pairs, fewer than max_sessions = 6"}},
		{"pairs equal sessions", func(c *Config) { c.RTPPortRange = [2]int{30000, 30009}; c.MaxSessions = 5 }, nil},
		{"defaults: 5000 pairs for 10000 sessions", func(c *Config) { *c = *Default(); c.MediaIP = netip.MustParseAddr("192.0.2.10") },
			[]string{"rtp_port_range = [30000, 39999] gives 5000 RTP port pairs, fewer than max_sessions = 10000"}},
		{"odd end port has no partner", func(c *Config) { c.RTPPortRange = [2]int{30000, 30010}; c.MaxSessions = 6 },
			[]string{"gives 5 RTP port pairs"}},
		{"unlimited sessions skips pair check", func(c *Config) { c.RTPPortRange = [2]int{30000, 30001}; c.MaxSessions = 0 },
			[]string{"max_sessions = 0"}},
		{"loopback and unlimited", func(c *Config) {
			c.MediaIP = netip.MustParseAddr("127.0.0.1")
			c.MaxSessions = 0
			c.MaxEndpointsPerSession = 0
		}, []string{"loopback", "max_sessions = 0", "max_endpoints_per_session = 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := hermetic(t)
			tc.mutate(c)
			warnings, err := c.Validate()
			if err != nil {
				t.Fatalf("warnings must not be errors: %v", err)
			}
			if len(warnings) != len(tc.want) {
				t.Fatalf("warnings = %q, want %d matching %q", warnings, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	c := hermetic(t)
	c.RTPPortRange = [2]int{30001, 30000}
	c.MediaTimeoutSecs = 0
	c.LogLevel = "nope"
	_, err := c.Validate()
	kes := keyErrors(t, err)
	got := map[string]int{}
	for _, ke := range kes {
		got[ke.Key]++
	}
	// All three broken rtp_port_range rules are listed, not just the
	// first: start > end, start odd, end - start < 1.
	want := map[string]int{"rtp_port_range": 3, "media_timeout_secs": 1, "log_level": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d errors, want %d (all: %v)", k, got[k], n, err)
		}
	}
	if len(kes) != 5 {
		t.Errorf("got %d errors, want 5: %v", len(kes), err)
	}
}

// probeDirEnv makes the test binary validate a configuration whose recording_dir is the given
// directory and print the result, instead of running tests (see TestMain).
const probeDirEnv = "RTPBRIDGE_CONFIG_PROBE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(probeDirEnv); dir != "" {
		c := Default()
		c.RecordingDir = dir
		c.CacheDir = os.Getenv(probeDirEnv + "_CACHE")
		c.MediaIP = netip.MustParseAddr("192.0.2.10")
		c.MaxSessions = 5000
		if _, err := c.Validate(); err != nil {
			fmt.Println(err)
		} else {
			fmt.Println("valid")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// validateAsNobody runs Validate for recordingDir in a child process under uid/gid 65534 and
// returns what it printed. The directory's ancestors up to the filesystem root must be
// traversable, so the test's temporary tree is opened up for the child.
func validateAsNobody(t *testing.T, recordingDir string) string {
	t.Helper()
	cache := filepath.Join(filepath.Dir(recordingDir), "cache")
	if err := os.Mkdir(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cache, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	for d := filepath.Dir(recordingDir); d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The test binary sits in go's private build directory; the child runs a copy of it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(recordingDir), "config.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), probeDirEnv+"="+recordingDir, probeDirEnv+"_CACHE="+cache)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child validation as uid 65534: %v\n%s", err, out)
	}
	return string(out)
}

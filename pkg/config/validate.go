package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// writeTestFile is the probe PROTOCOL.md §26 names: created and deleted in
// recording_dir and cache_dir to prove they are writable.
const writeTestFile = ".rtpbridge-write-test"

// maxSecs bounds every *_secs key. PROTOCOL.md only asks for "> 0" (or
// nothing), but consumers turn these into time.Duration, and
// recording_flush_timeout_secs is doubled for the abort deadline; a larger
// value would overflow into a negative duration and fire at once. The
// bound is about 146 years, so no real configuration meets it.
const maxSecs = math.MaxInt64 / int64(2*time.Second)

// Validate applies every rule of PROTOCOL.md §26 (plus opus_complexity from
// §29) and returns the warnings the protocol asks for separately from the
// errors. All broken rules are reported at once, joined with errors.Join,
// so an operator can fix a file in one go; each one is a *KeyError naming
// the key, the value and the rule.
//
// The directory rules touch the file system: media_dir must exist; a
// non-default recording_dir or cache_dir needs an existing parent; and
// whichever of the two exists (default or not) must be writable, which is
// probed by creating and deleting .rtpbridge-write-test inside it.
func (c *Config) Validate() (warnings []string, err error) {
	var errs []error
	fail := func(key, value, rule string, cause error) {
		errs = append(errs, &KeyError{Key: key, Value: value, Rule: rule, Err: cause})
	}

	// listen
	listenValue := strconv.Quote(strings.Join(c.Listen, ","))
	if len(c.Listen) == 0 {
		fail("listen", listenValue, "must contain at least one ip:port address", nil)
	}
	for _, a := range c.Listen {
		// Port 0 is accepted like any ip:port: it asks the kernel for a free
		// port, which tests rely on.
		if _, perr := netip.ParseAddrPort(a); perr != nil {
			fail("listen", listenValue, fmt.Sprintf("entry %q must be ip:port", a), perr)
		}
	}

	// media_ip
	ipValue := strconv.Quote(c.MediaIP.String())
	switch {
	case !c.MediaIP.IsValid():
		fail("media_ip", `""`, "must be an IP address (v4 or v6)", nil)
	case c.MediaIP.IsUnspecified():
		// Media sockets could bind the wildcard, but media_ip is also the
		// SDP c= address and the ICE candidate peers send to; 0.0.0.0 or ::
		// there is unroutable, so it is refused rather than producing SDP
		// no peer can use.
		fail("media_ip", ipValue, "must not be unspecified (0.0.0.0 or ::): it is advertised in SDP c= and ICE candidates", nil)
	case c.MediaIP.Zone() != "":
		// Same reason: SDP c= has no syntax for an IPv6 zone.
		fail("media_ip", ipValue, "must not carry an IPv6 zone: it is advertised in SDP c=", nil)
	case c.MediaIP.IsLoopback():
		warnings = append(warnings, fmt.Sprintf("media_ip = %s is a loopback address: only peers on this host can reach media", ipValue))
	}

	// rtp_source_networks
	if _, err := ParseDownloadNetworks(c.FileDownloadNetworks); err != nil {
		fail("file_download_networks", fmt.Sprintf("%q", c.FileDownloadNetworks), "each entry must be a CIDR prefix or an IP address", err)
	}
	if err := checkOrigins(c.FileDownloadOrigins); err != nil {
		fail("file_download_origins", fmt.Sprintf("%q", c.FileDownloadOrigins), "each entry must be scheme://host[:port] with scheme http or https", err)
	}
	if _, err := rtpnet.ParseSourcePolicy(c.RTPSourceNetworks); err != nil {
		fail("rtp_source_networks", fmt.Sprintf("%q", c.RTPSourceNetworks), `each entry must be "*", a CIDR prefix or an IP address`, err)
	}

	// rtp_port_range
	start, end := c.RTPPortRange[0], c.RTPPortRange[1]
	rangeValue := fmt.Sprintf("[%d, %d]", start, end)
	rangeOK := true
	for _, r := range []struct {
		bad  bool
		rule string
	}{
		{start > end, "start must be <= end"},
		{start < 1024 || end < 1024, "start and end must both be >= 1024"},
		{start%2 != 0, "start must be even"},
		{end > 65534, "end must be <= 65534"},
		{end-start < 1, "end - start must be >= 1"},
	} {
		if r.bad {
			fail("rtp_port_range", rangeValue, r.rule, nil)
			rangeOK = false
		}
	}

	// webrtc_port_range: [0, 0] is unset (§35: ports come from rtp_port_range).
	if w := c.WebRTCPortRange; w != [2]int{} {
		value := fmt.Sprintf("[%d, %d]", w[0], w[1])
		for _, r := range []struct {
			bad  bool
			rule string
		}{
			{w[0] > w[1], "start must be <= end"},
			{w[0] < 1024 || w[1] < 1024, "start and end must both be >= 1024 ([0, 0] means unset)"},
			{w[1] > 65535, "end must be <= 65535"},
		} {
			if r.bad {
				fail("webrtc_port_range", value, r.rule, nil)
			}
		}
	}

	// Integer keys with inclusive bounds [lo, hi]. lo = 0 on keys the
	// protocol leaves unchecked still rejects negatives: the original reads
	// them as unsigned integers.
	for _, k := range []struct {
		key       string
		v, lo, hi int64
	}{
		{"disconnect_timeout_secs", int64(c.DisconnectTimeoutSecs), 1, maxSecs},
		{"shutdown_max_wait_secs", int64(c.ShutdownMaxWaitSecs), 1, maxSecs},
		{"cache_cleanup_interval_secs", int64(c.CacheCleanupIntervalSecs), 1, maxSecs},
		{"max_concurrent_downloads", int64(c.MaxConcurrentDownloads), 1, math.MaxInt64},
		{"max_sessions", int64(c.MaxSessions), 0, math.MaxInt64},
		{"max_endpoints_per_session", int64(c.MaxEndpointsPerSession), 0, math.MaxInt64},
		{"max_recordings_per_session", int64(c.MaxRecordingsPerSession), 1, math.MaxInt64},
		{"recording_flush_timeout_secs", int64(c.RecordingFlushTimeoutSecs), 1, maxSecs},
		{"ws_max_message_size_kb", int64(c.WSMaxMessageSizeKB), 1, 512000},
		{"max_sdp_size_kb", int64(c.MaxSDPSizeKB), 1, 10000},
		{"session_idle_timeout_secs", int64(c.SessionIdleTimeoutSecs), 0, maxSecs},
		{"empty_session_timeout_secs", int64(c.EmptySessionTimeoutSecs), 0, maxSecs},
		{"media_timeout_secs", int64(c.MediaTimeoutSecs), 1, 300},
		{"max_connections", int64(c.MaxConnections), 0, math.MaxInt64},
		{"ws_ping_interval_secs", int64(c.WSPingIntervalSecs), 1, maxSecs},
		{"event_channel_size", int64(c.EventChannelSize), 1, math.MaxInt64},
		{"critical_event_channel_size", int64(c.CriticalEventChannelSize), 1, math.MaxInt64},
		{"transcode_cache_size", int64(c.TranscodeCacheSize), 1, math.MaxInt64},
		{"max_file_download_bytes", c.MaxFileDownloadBytes, 0, math.MaxInt64},
		{"max_cache_entries", int64(c.MaxCacheEntries), 1, math.MaxInt64},
		{"max_cache_bytes", c.MaxCacheBytes, 1, math.MaxInt64},
		{"max_recording_download_bytes", c.MaxRecordingDownloadBytes, 0, math.MaxInt64},
		{"recording_channel_size", int64(c.RecordingChannelSize), 1, math.MaxInt64},
		{"opus_complexity", int64(c.OpusComplexity), 0, 10},
		{"ws_audio_buffer_ms", int64(c.WSAudioBufferMs), 20, 3600000},
	} {
		if rule := intRule(k.v, k.lo, k.hi); rule != "" {
			fail(k.key, strconv.FormatInt(k.v, 10), rule, nil)
		}
	}

	// Warnings the protocol asks for on otherwise valid values.
	if c.MaxSessions == 0 {
		warnings = append(warnings, "max_sessions = 0: the number of sessions is unlimited")
	}
	if c.MaxEndpointsPerSession == 0 {
		warnings = append(warnings, "max_endpoints_per_session = 0: the number of endpoints per session is unlimited")
	}
	if rangeOK && c.MaxSessions > 0 {
		// A plain RTP leg takes an even port and the odd one above it, so an
		// odd end port has no partner and does not count. Note that the
		// defaults themselves warn: [30000, 39999] is 5000 pairs against
		// max_sessions = 10000; the protocol asks for exactly this check.
		if pairs := (end - start + 1) / 2; pairs < c.MaxSessions {
			warnings = append(warnings, fmt.Sprintf(
				"rtp_port_range = %s gives %d RTP port pairs, fewer than max_sessions = %d: once they are in use, further plain RTP endpoints cannot get ports",
				rangeValue, pairs, c.MaxSessions))
		}
	}

	// log_level
	switch c.InbandDTMF {
	case "auto", "always", "off":
	default:
		fail("inband_dtmf", strconv.Quote(c.InbandDTMF), `must be "auto", "always" or "off"`, nil)
	}
	if _, lerr := ParseLogLevel(c.LogLevel); lerr != nil {
		fail("log_level", strconv.Quote(c.LogLevel), "must be a valid log filter (trace, debug, info, warn, error, or directives like \"warn,rtpbridge=debug\")", lerr)
	}

	// Directories last: they touch the file system.
	if c.MediaDir != "" {
		if derr := checkExistingDir(c.MediaDir); derr != nil {
			fail("media_dir", strconv.Quote(c.MediaDir), "must be an existing directory", derr)
		}
	}
	if rule, derr := checkWritableDir(c.RecordingDir, DefaultRecordingDir); rule != "" {
		fail("recording_dir", strconv.Quote(c.RecordingDir), rule, derr)
	}
	if rule, derr := checkWritableDir(c.CacheDir, DefaultCacheDir); rule != "" {
		fail("cache_dir", strconv.Quote(c.CacheDir), rule, derr)
	}

	if len(errs) > 0 {
		return warnings, errors.Join(errs...)
	}
	return warnings, nil
}

// intRule returns the broken rule for v against the inclusive bounds
// [lo, hi], or "" when v is within them. The wording follows the protocol
// table: "> 0" for positive keys, a range where the table gives one.
func intRule(v, lo, hi int64) string {
	if v >= lo && v <= hi {
		return ""
	}
	switch {
	case v < 0 && lo == 0 && (hi == math.MaxInt64 || hi == maxSecs):
		return "must not be negative"
	case v < lo && lo == 1 && (hi == math.MaxInt64 || hi == maxSecs):
		return "must be > 0"
	case v > hi && hi == maxSecs && lo <= 1:
		return fmt.Sprintf("must be at most %d seconds (larger values overflow a duration)", maxSecs)
	default:
		return fmt.Sprintf("must be between %d and %d", lo, hi)
	}
}

// checkExistingDir reports why path is not an existing directory, or nil.
func checkExistingDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("checking directory: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("it is not a directory")
	}
	return nil
}

// checkWritableDir applies the recording_dir / cache_dir rule: a
// non-default path needs an existing parent directory (the directory
// itself may be created at start-up), and an existing directory must be
// writable. It returns the broken rule and its cause, or "" when fine.
func checkWritableDir(path, def string) (string, error) {
	if path == "" {
		return "must not be empty", nil
	}
	clean := filepath.Clean(path)
	if clean != filepath.Clean(def) {
		parent := filepath.Dir(clean)
		if err := checkExistingDir(parent); err != nil {
			return fmt.Sprintf("parent directory %q must exist", parent), err
		}
	}
	fi, err := os.Stat(clean)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "must be accessible", fmt.Errorf("checking directory: %w", err)
	case !fi.IsDir():
		return "must be a directory", errors.New("it exists and is not a directory")
	}
	if err := probeWritable(clean); err != nil {
		return "must be writable", withDirAdvice(clean, err)
	}
	return "", nil
}

// probeWritable proves dir is writable the way the server will use it: by
// creating a file and deleting it again. Permission bits alone would lie
// (root ignores them; read-only mounts and ACLs do not show in them).
func probeWritable(dir string) error {
	p := filepath.Join(dir, writeTestFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating probe file: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("closing probe file: %w", err)
	}
	// ErrNotExist means a concurrent probe of the same directory (another
	// instance starting, parallel tests) removed it first; the create above
	// already proved writability.
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing probe file: %w", err)
	}
	return nil
}

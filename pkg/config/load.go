package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// keyDef describes one TOML key: its name and how a decoded TOML value is
// stored into a Config. set returns a rule text ("must be a string") when
// the value has the wrong shape, plus an optional cause.
type keyDef struct {
	name string
	set  func(c *Config, v any) (rule string, cause error)
}

// keyDefs lists every key in PROTOCOL.md §26 order (plus opus_complexity).
// It is the single source of truth for which keys exist; the example-file
// test checks the example against it.
func keyDefs() []keyDef {
	return []keyDef{
		{"listen", func(c *Config, v any) (string, error) {
			s, ok := v.(string)
			if !ok {
				return "must be a string (comma-separated ip:port list), not " + tomlTypeName(v), nil
			}
			c.Listen = SplitListen(s)
			return "", nil
		}},
		{"media_ip", func(c *Config, v any) (string, error) {
			s, ok := v.(string)
			if !ok {
				return "must be a string holding an IP address, not " + tomlTypeName(v), nil
			}
			ip, err := parseIP(s)
			if err != nil {
				return "must be an IP address (v4 or v6)", err
			}
			c.MediaIP = ip
			return "", nil
		}},
		{"rtp_port_range", func(c *Config, v any) (string, error) {
			const rule = "must be an array of two integers [start, end]"
			arr, ok := v.([]any)
			if !ok || len(arr) != 2 {
				return rule, nil
			}
			for i, e := range arr {
				n, ok := e.(int64)
				if !ok || n < math.MinInt || n > math.MaxInt {
					return rule, nil
				}
				c.RTPPortRange[i] = int(n)
			}
			return "", nil
		}},
		{"webrtc_port_range", func(c *Config, v any) (string, error) {
			const rule = "must be an array of two integers [start, end]"
			arr, ok := v.([]any)
			if !ok || len(arr) != 2 {
				return rule, nil
			}
			for i, e := range arr {
				n, ok := e.(int64)
				if !ok || n < math.MinInt || n > math.MaxInt {
					return rule, nil
				}
				c.WebRTCPortRange[i] = int(n)
			}
			return "", nil
		}},
		{"rtp_source_networks", func(c *Config, v any) (string, error) {
			const rule = `must be an array of strings ("*", CIDR prefixes or IP addresses)`
			arr, ok := v.([]any)
			if !ok {
				return rule, nil
			}
			nets := make([]string, 0, len(arr))
			for _, e := range arr {
				s, ok := e.(string)
				if !ok {
					return rule, nil
				}
				nets = append(nets, s)
			}
			c.RTPSourceNetworks = nets
			return "", nil
		}},
		intKey("disconnect_timeout_secs", func(c *Config) *int { return &c.DisconnectTimeoutSecs }),
		intKey("shutdown_max_wait_secs", func(c *Config) *int { return &c.ShutdownMaxWaitSecs }),
		stringKey("media_dir", func(c *Config) *string { return &c.MediaDir }),
		stringKey("recording_dir", func(c *Config) *string { return &c.RecordingDir }),
		stringKey("cache_dir", func(c *Config) *string { return &c.CacheDir }),
		intKey("cache_cleanup_interval_secs", func(c *Config) *int { return &c.CacheCleanupIntervalSecs }),
		intKey("max_concurrent_downloads", func(c *Config) *int { return &c.MaxConcurrentDownloads }),
		intKey("max_sessions", func(c *Config) *int { return &c.MaxSessions }),
		intKey("max_endpoints_per_session", func(c *Config) *int { return &c.MaxEndpointsPerSession }),
		intKey("max_recordings_per_session", func(c *Config) *int { return &c.MaxRecordingsPerSession }),
		intKey("recording_flush_timeout_secs", func(c *Config) *int { return &c.RecordingFlushTimeoutSecs }),
		intKey("ws_max_message_size_kb", func(c *Config) *int { return &c.WSMaxMessageSizeKB }),
		intKey("max_sdp_size_kb", func(c *Config) *int { return &c.MaxSDPSizeKB }),
		intKey("session_idle_timeout_secs", func(c *Config) *int { return &c.SessionIdleTimeoutSecs }),
		intKey("empty_session_timeout_secs", func(c *Config) *int { return &c.EmptySessionTimeoutSecs }),
		intKey("media_timeout_secs", func(c *Config) *int { return &c.MediaTimeoutSecs }),
		intKey("max_connections", func(c *Config) *int { return &c.MaxConnections }),
		intKey("ws_ping_interval_secs", func(c *Config) *int { return &c.WSPingIntervalSecs }),
		intKey("event_channel_size", func(c *Config) *int { return &c.EventChannelSize }),
		intKey("critical_event_channel_size", func(c *Config) *int { return &c.CriticalEventChannelSize }),
		intKey("transcode_cache_size", func(c *Config) *int { return &c.TranscodeCacheSize }),
		int64Key("max_file_download_bytes", func(c *Config) *int64 { return &c.MaxFileDownloadBytes }),
		stringsKey("file_download_origins", func(c *Config) *[]string { return &c.FileDownloadOrigins }),
		stringsKey("file_download_networks", func(c *Config) *[]string { return &c.FileDownloadNetworks }),
		intKey("max_cache_entries", func(c *Config) *int { return &c.MaxCacheEntries }),
		int64Key("max_cache_bytes", func(c *Config) *int64 { return &c.MaxCacheBytes }),
		int64Key("max_recording_download_bytes", func(c *Config) *int64 { return &c.MaxRecordingDownloadBytes }),
		intKey("recording_channel_size", func(c *Config) *int { return &c.RecordingChannelSize }),
		stringKey("log_level", func(c *Config) *string { return &c.LogLevel }),
		intKey("opus_complexity", func(c *Config) *int { return &c.OpusComplexity }),
		intKey("ws_audio_buffer_ms", func(c *Config) *int { return &c.WSAudioBufferMs }),
		stringKey("inband_dtmf", func(c *Config) *string { return &c.InbandDTMF }),
	}
}

// KeyNames returns every TOML key rtpbridge understands, in documentation
// order.
func KeyNames() []string {
	defs := keyDefs()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.name
	}
	return names
}

func intKey(name string, field func(*Config) *int) keyDef {
	return keyDef{name, func(c *Config, v any) (string, error) {
		n, ok := v.(int64)
		if !ok {
			return "must be an integer, not " + tomlTypeName(v), nil
		}
		// Only matters where int is 32 bits; there an out-of-range value
		// must not wrap around into something that passes validation.
		if n < math.MinInt || n > math.MaxInt {
			return "does not fit in an integer on this platform", nil
		}
		*field(c) = int(n)
		return "", nil
	}}
}

func int64Key(name string, field func(*Config) *int64) keyDef {
	return keyDef{name, func(c *Config, v any) (string, error) {
		n, ok := v.(int64)
		if !ok {
			return "must be an integer, not " + tomlTypeName(v), nil
		}
		*field(c) = n
		return "", nil
	}}
}

// stringsKey is a key holding an array of strings.
func stringsKey(name string, field func(*Config) *[]string) keyDef {
	return keyDef{name, func(c *Config, v any) (string, error) {
		const rule = "must be an array of strings"
		arr, ok := v.([]any)
		if !ok {
			return rule, nil
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				return rule, nil
			}
			out = append(out, s)
		}
		*field(c) = out
		return "", nil
	}}
}

func stringKey(name string, field func(*Config) *string) keyDef {
	return keyDef{name, func(c *Config, v any) (string, error) {
		s, ok := v.(string)
		if !ok {
			return "must be a string, not " + tomlTypeName(v), nil
		}
		*field(c) = s
		return "", nil
	}}
}

// SplitListen splits a comma-separated listen string into its entries,
// trimming blanks around each and dropping empty entries (so a trailing
// comma is harmless). Validity of each entry is checked by Validate.
func SplitListen(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseIP parses a media IP. IPv4-mapped IPv6 addresses are unmapped so the
// SDP c= line says "IP4" for what is really an IPv4 address.
func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parsing IP address: %w", err)
	}
	return ip.Unmap(), nil
}

// LoadFile returns the defaults overlaid with the TOML file at path. It
// rejects unreadable or malformed files, unknown keys and values of the
// wrong type, but does not apply the validation rules (see Validate).
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, fmt.Errorf("config: parsing %s: %w", path, err)
	}

	defs := keyDefs()
	known := make(map[string]bool, len(defs))
	for _, d := range defs {
		known[d.name] = true
	}
	// md.Keys() is in document order, so the first typo reported is the
	// first in the file. Exact, case-sensitive names are required: the
	// original is case-sensitive, and BurntSushi's struct decoding (and so
	// MetaData.Undecoded) would silently accept "Listen" for "listen".
	var errs []error
	reported := map[string]bool{}
	for _, k := range md.Keys() {
		if known[k[0]] || reported[k[0]] {
			continue
		}
		reported[k[0]] = true
		errs = append(errs, &UnknownKeyError{Key: k.String(), File: path, Suggestion: suggestKey(k[0], defs)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	cfg := Default()
	for _, d := range defs {
		v, ok := raw[d.name]
		if !ok {
			continue
		}
		if rule, cause := d.set(cfg, v); rule != "" {
			errs = append(errs, &KeyError{Key: d.name, Value: formatTOML(v), File: path, Rule: rule, Err: cause})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// suggestKey returns the known key closest to an unknown one when the
// distance is small enough that a typo is the likely explanation.
func suggestKey(unknown string, defs []keyDef) string {
	best, bestDist := "", 3 // at most two edits
	for _, d := range defs {
		if dist := editDistance(unknown, d.name); dist < bestDist {
			best, bestDist = d.name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes; keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tomlTypeName names the TOML type of a value decoded by BurntSushi/toml
// into an interface, for "must be X, not Y" messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case time.Time:
		return "a date/time"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// formatTOML renders a decoded TOML value back in TOML notation for error
// messages.
func formatTOML(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatTOML(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatTOML(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " = " + formatTOML(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(v)
	}
}

// Flag names. Each option has a short and a long name registered on the
// same variable; the standard flag package accepts -x and --x for both.
const (
	flagListenShort  = "l"
	flagListenLong   = "listen"
	flagMediaIPShort = "m"
	flagMediaIPLong  = "media-ip"
	flagConfigShort  = "c"
	flagConfigLong   = "config"
	flagLogLevel     = "log-level"
)

const usageText = `Usage: rtpbridge [OPTIONS]

Options:
  -l, --listen <ADDR[,ADDR...]>  control listen addresses, comma-separated ip:port
                                 (default 0.0.0.0:9100)
  -m, --media-ip <IP>            IP for media sockets, SDP c= and ICE candidates
                                 (default 127.0.0.1)
  -c, --config <PATH>            TOML configuration file (see rtpbridge.toml.example)
      --log-level <FILTER>       trace, debug, info, warn, error, or directives
                                 like warn,rtpbridge=debug (default info)
  -h, --help                     print this help and exit

Options given on the command line override the configuration file.
`

// Load parses the command line (args without argv[0]), reads the TOML file
// if -c/--config was given, applies the flags that were given on the
// command line over it, and validates the result.
//
// Warnings (loopback media_ip, unlimited max_sessions or
// max_endpoints_per_session, fewer RTP port pairs than max_sessions) are
// returned separately and do not stop start-up. For -h/--help the usage
// text is written to usageOut and the error is flag.ErrHelp. usageOut may
// be nil to discard usage and flag-parsing messages.
func Load(args []string, usageOut io.Writer) (cfg *Config, warnings []string, err error) {
	if usageOut == nil {
		usageOut = io.Discard
	}
	fs := flag.NewFlagSet("rtpbridge", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() { _, _ = io.WriteString(usageOut, usageText) }

	var listen, mediaIP, path, logLevel string
	fs.StringVar(&listen, flagListenShort, "", "")
	fs.StringVar(&listen, flagListenLong, "", "")
	fs.StringVar(&mediaIP, flagMediaIPShort, "", "")
	fs.StringVar(&mediaIP, flagMediaIPLong, "", "")
	fs.StringVar(&path, flagConfigShort, "", "")
	fs.StringVar(&path, flagConfigLong, "", "")
	fs.StringVar(&logLevel, flagLogLevel, "", "")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, flag.ErrHelp
		}
		return nil, nil, fmt.Errorf("config: command line: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("config: command line: unexpected argument %q", fs.Arg(0))
	}

	// Only flags actually present on the command line override the file;
	// their zero defaults must not.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg = Default()
	if given[flagConfigShort] || given[flagConfigLong] {
		if path == "" {
			return nil, nil, errors.New("config: -c/--config: empty path")
		}
		if cfg, err = LoadFile(path); err != nil {
			return nil, nil, err
		}
	}
	if given[flagListenShort] || given[flagListenLong] {
		cfg.Listen = SplitListen(listen)
	}
	if given[flagMediaIPShort] || given[flagMediaIPLong] {
		ip, err := parseIP(mediaIP)
		if err != nil {
			return nil, nil, &KeyError{Key: "media_ip (-m/--media-ip)", Value: strconv.Quote(mediaIP), Rule: "must be an IP address (v4 or v6)", Err: err}
		}
		cfg.MediaIP = ip
	}
	if given[flagLogLevel] {
		cfg.LogLevel = logLevel
	}

	warnings, err = cfg.Validate()
	if err != nil {
		return nil, nil, err
	}
	return cfg, warnings, nil
}

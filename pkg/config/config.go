// Package config holds rtpbridge's server configuration: defaults, the TOML
// file, the command-line flags that override it, and validation.
//
// The keys, defaults and rules are those of PROTOCOL.md §26 with the
// overrides of §0 D23 (unknown keys are errors; --log-level takes
// trace…error) plus the §29 extension key opus_complexity.
package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Defaults that validation compares against: recording_dir and cache_dir
// are checked more leniently when they keep their default value, because
// the default locations are created at start-up rather than by the
// operator.
const (
	// DefaultRecordingDir is the default recording_dir.
	DefaultRecordingDir = "/var/lib/rtpbridge/recordings"
	// DefaultCacheDir is the default cache_dir.
	DefaultCacheDir = "/tmp/rtpbridge-cache"
	// DefaultListen is the default listen address.
	DefaultListen = "0.0.0.0:9100"
	// DefaultLogLevel is the default log_level filter.
	DefaultLogLevel = "info"
)

// Config is the complete server configuration. Field names are Go-style;
// the TOML keys are exactly the PROTOCOL.md keys (see the comment on each
// field). All durations are whole seconds and all sizes are plain integers
// so that the values match the protocol table one to one.
type Config struct {
	// Listen is `listen`: the control-plane listen addresses, each ip:port.
	// In TOML and on the command line it is one comma-separated string.
	Listen []string
	// MediaIP is `media_ip`: the address media sockets bind to, also the
	// SDP c= address and the ICE host candidate.
	MediaIP netip.Addr
	// RTPPortRange is `rtp_port_range`: inclusive [start, end] for plain RTP
	// (even port RTP, next odd port RTCP).
	RTPPortRange [2]int
	// WebRTCPortRange is `webrtc_port_range` (PROTOCOL.md §35): inclusive
	// [start, end] for WebRTC endpoints' sockets, one port each. [0, 0] (the
	// default, "unset") takes them from rtp_port_range.
	WebRTCPortRange [2]int
	// RTPSourceNetworks is `rtp_source_networks` (PROTOCOL.md §0 D24): who
	// may latch a leg's media source. ["*"] (the default) any source; []
	// only the address in the peer's SDP; otherwise CIDR prefixes or single
	// addresses. After the latch only that exact source is accepted.
	RTPSourceNetworks []string
	// DisconnectTimeoutSecs is `disconnect_timeout_secs`: how long an
	// orphaned session waits for session.attach.
	DisconnectTimeoutSecs int
	// ShutdownMaxWaitSecs is `shutdown_max_wait_secs`: the longest graceful
	// drain.
	ShutdownMaxWaitSecs int
	// MediaDir is `media_dir`: root for local file playback; "" means unset
	// (local playback off).
	MediaDir string
	// RecordingDir is `recording_dir`: where PCAP recordings are written.
	RecordingDir string
	// CacheDir is `cache_dir`: the URL download cache.
	CacheDir string
	// CacheCleanupIntervalSecs is `cache_cleanup_interval_secs`.
	CacheCleanupIntervalSecs int
	// MaxConcurrentDownloads is `max_concurrent_downloads`.
	MaxConcurrentDownloads int
	// MaxSessions is `max_sessions`; 0 means unlimited.
	MaxSessions int
	// MaxEndpointsPerSession is `max_endpoints_per_session`; 0 means
	// unlimited.
	MaxEndpointsPerSession int
	// MaxRecordingsPerSession is `max_recordings_per_session`.
	MaxRecordingsPerSession int
	// RecordingFlushTimeoutSecs is `recording_flush_timeout_secs`: warn after
	// this long, abort the writer at twice it.
	RecordingFlushTimeoutSecs int
	// WSMaxMessageSizeKB is `ws_max_message_size_kb` (KiB).
	WSMaxMessageSizeKB int
	// MaxSDPSizeKB is `max_sdp_size_kb` (KiB).
	MaxSDPSizeKB int
	// SessionIdleTimeoutSecs is `session_idle_timeout_secs`; 0 means off.
	SessionIdleTimeoutSecs int
	// EmptySessionTimeoutSecs is `empty_session_timeout_secs`; 0 means off.
	EmptySessionTimeoutSecs int
	// MediaTimeoutSecs is `media_timeout_secs`.
	MediaTimeoutSecs int
	// MaxConnections is `max_connections`; 0 means unlimited.
	MaxConnections int
	// WSPingIntervalSecs is `ws_ping_interval_secs`.
	WSPingIntervalSecs int
	// EventChannelSize is `event_channel_size`: the per-connection normal
	// event queue.
	EventChannelSize int
	// CriticalEventChannelSize is `critical_event_channel_size`: the
	// per-connection critical event queue.
	CriticalEventChannelSize int
	// TranscodeCacheSize is `transcode_cache_size`.
	TranscodeCacheSize int
	// RecordingChannelSize is `recording_channel_size`.
	RecordingChannelSize int
	// OpusComplexity is `opus_complexity` (PROTOCOL.md §29): libopus
	// encoder complexity 0..=10.
	OpusComplexity int
	// WSAudioBufferMs is `ws_audio_buffer_ms` (PROTOCOL.md §30): how much
	// inbound WebSocket audio waits for playout before the oldest is dropped.
	WSAudioBufferMs int
	// InbandDTMF is `inband_dtmf` (PROTOCOL.md §31): which legs get in-band
	// DTMF detection: "auto" (those without telephone-event), "always" (every
	// RTP/WebRTC leg) or "off".
	InbandDTMF string
	// MaxFileDownloadBytes is `max_file_download_bytes`.
	MaxFileDownloadBytes int64
	// FileDownloadOrigins is `file_download_origins` (PROTOCOL.md §34):
	// scheme://host[:port] origins URL playback may fetch from; empty means
	// any public origin.
	FileDownloadOrigins []string
	// FileDownloadNetworks is `file_download_networks` (PROTOCOL.md §34):
	// CIDR prefixes of private, loopback, link-local or special-use networks
	// that URL playback may nevertheless reach; empty refuses them all.
	FileDownloadNetworks []string
	// MaxCacheEntries and MaxCacheBytes are `max_cache_entries` and
	// `max_cache_bytes` (PROTOCOL.md §34): the URL cache's bounds.
	MaxCacheEntries int
	MaxCacheBytes   int64
	// MaxRecordingDownloadBytes is `max_recording_download_bytes`.
	MaxRecordingDownloadBytes int64
	// LogLevel is `log_level`: the raw filter text, e.g. "info" or
	// "warn,rtpbridge=debug"; see ParseLogLevel.
	LogLevel string
}

// Default returns the configuration with every key at its PROTOCOL.md §26
// default.
func Default() *Config {
	return &Config{
		Listen:                    []string{DefaultListen},
		MediaIP:                   netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		RTPPortRange:              [2]int{30000, 39999},
		RTPSourceNetworks:         []string{"*"},
		DisconnectTimeoutSecs:     30,
		ShutdownMaxWaitSecs:       300,
		MediaDir:                  "",
		RecordingDir:              DefaultRecordingDir,
		CacheDir:                  DefaultCacheDir,
		CacheCleanupIntervalSecs:  300,
		MaxConcurrentDownloads:    16,
		MaxSessions:               10000,
		MaxEndpointsPerSession:    20,
		MaxRecordingsPerSession:   100,
		RecordingFlushTimeoutSecs: 10,
		WSMaxMessageSizeKB:        256,
		MaxSDPSizeKB:              64,
		SessionIdleTimeoutSecs:    0,
		EmptySessionTimeoutSecs:   0,
		MediaTimeoutSecs:          5,
		MaxConnections:            1000,
		WSPingIntervalSecs:        30,
		EventChannelSize:          256,
		CriticalEventChannelSize:  64,
		TranscodeCacheSize:        64,
		RecordingChannelSize:      1000,
		OpusComplexity:            9,
		WSAudioBufferMs:           60000,
		InbandDTMF:                "auto",
		MaxFileDownloadBytes:      104857600,
		FileDownloadOrigins:       []string{},
		FileDownloadNetworks:      []string{},
		MaxCacheEntries:           1000,
		MaxCacheBytes:             1073741824,
		MaxRecordingDownloadBytes: 536870912,
		LogLevel:                  DefaultLogLevel,
	}
}

// KeyError reports a configuration problem that belongs to one key: its
// message names the key, the offending value and the rule that was broken,
// e.g. `config: rtp_port_range = [30001, 39999]: start must be even`.
type KeyError struct {
	// Key is the TOML key (or the flag, for a value that could not even be
	// parsed from the command line).
	Key string
	// Value is the offending value in TOML notation; "" when not applicable.
	Value string
	// File is the TOML file the value came from, when known.
	File string
	// Rule is the rule that was broken, in words.
	Rule string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Key)
	if e.Value != "" {
		b.WriteString(" = ")
		b.WriteString(e.Value)
	}
	if e.File != "" {
		b.WriteString(" in ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	b.WriteString(e.Rule)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *KeyError) Unwrap() error { return e.Err }

// UnknownKeyError reports a key in the TOML file that rtpbridge does not
// know (PROTOCOL.md D23: typos must not be silently ignored).
type UnknownKeyError struct {
	// Key is the unknown key as written, dotted for nested keys.
	Key string
	// File is the TOML file.
	File string
	// Suggestion is the closest known key when one is near enough to be a
	// likely typo, else "".
	Suggestion string
}

// Error implements error.
func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("config: unknown key %q in %s", e.Key, e.File)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return msg
}

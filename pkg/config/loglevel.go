package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
)

// LevelOff is the level ParseLogLevel returns when the filter turns
// rtpbridge's own logs off ("off", or only directives for other targets).
// Nothing is ever logged at it, so a handler with this minimum level is
// silent.
const LevelOff = slog.Level(math.MaxInt32)

// selfTarget is the log target of rtpbridge's own logs in filter
// directives, as in the original ("warn,rtpbridge=debug").
const selfTarget = "rtpbridge"

// ParseLogLevel turns a log filter into the effective slog.Level for
// rtpbridge's own logs. The filter is either a level (trace, debug, info,
// warn, error, off; any case) or a comma-separated directive list in the
// original's syntax, e.g. "warn,rtpbridge=debug".
//
// Effective level: a "rtpbridge=LEVEL" directive wins; otherwise the most
// verbose "rtpbridge::module=LEVEL" directive (Go logging cannot filter per
// module, so the level that shows what was asked for is used); otherwise
// the last bare LEVEL; otherwise LevelOff, because a filter naming only
// other targets enables nothing else. Directives for other targets and
// span directives ("target[span]=level") are accepted and ignored. trace
// logs like debug.
//
// Unlike the original, a bare word must be a level: "inf" is an error, not
// a target enabling trace for a module called "inf", so a typo cannot
// silently switch logging off.
func ParseLogLevel(filter string) (slog.Level, error) {
	var (
		defLevel, selfLevel, moduleLevel slog.Level
		haveDef, haveSelf, haveModule    bool
		n                                int
	)
	for _, d := range strings.Split(filter, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue // "info," is tolerated, as in the original
		}
		n++
		eq := strings.LastIndexByte(d, '=')
		if eq < 0 {
			lvl, err := parseLevelName(d)
			if err != nil {
				return 0, fmt.Errorf("log filter %q: %w", filter, err)
			}
			defLevel, haveDef = lvl, true
			continue
		}
		target, levelText := strings.TrimSpace(d[:eq]), d[eq+1:]
		lvl, err := parseLevelName(levelText)
		if err != nil {
			return 0, fmt.Errorf("log filter %q: directive %q: %w", filter, d, err)
		}
		span := false
		if i := strings.IndexByte(target, '['); i >= 0 {
			if !strings.HasSuffix(target, "]") {
				return 0, fmt.Errorf("log filter %q: directive %q: unterminated span filter", filter, d)
			}
			target, span = target[:i], true
		}
		if err := checkTarget(target, span); err != nil {
			return 0, fmt.Errorf("log filter %q: directive %q: %w", filter, d, err)
		}
		switch {
		case span:
			// Span-scoped directives only apply inside spans; slog has
			// none, so they never change our level.
		case target == selfTarget:
			selfLevel, haveSelf = lvl, true
		case strings.HasPrefix(target, selfTarget+"::"):
			if !haveModule || lvl < moduleLevel {
				moduleLevel = lvl
			}
			haveModule = true
		}
	}
	switch {
	case n == 0:
		return 0, fmt.Errorf("log filter %q: empty", filter)
	case haveSelf:
		return selfLevel, nil
	case haveModule:
		return moduleLevel, nil
	case haveDef:
		return defLevel, nil
	default:
		return LevelOff, nil
	}
}

// parseLevelName maps a level name to its slog level.
func parseLevelName(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace", "debug":
		// slog has no trace level; PROTOCOL.md D23 says trace logs like
		// debug.
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "off":
		return LevelOff, nil
	}
	return 0, fmt.Errorf("unknown level %q (want trace, debug, info, warn, error or off)", s)
}

// checkTarget accepts the characters of Rust module paths and crate names.
// An empty target is only valid in front of a span filter.
func checkTarget(t string, span bool) error {
	if t == "" {
		if span {
			return nil
		}
		return errors.New("empty target before '='")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == ':' || r == '.') {
			return fmt.Errorf("invalid character %q in target %q", r, t)
		}
	}
	return nil
}

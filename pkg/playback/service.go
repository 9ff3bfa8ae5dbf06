// Package playback implements file endpoints (PROTOCOL.md §6, §10, §18, §34): local files
// confined to media_dir, URLs downloaded into cache_dir, shared decoders, and the file leg
// that hands decoded audio to its session as 20 ms PCM frames at the file's own rate.
//
// Nothing here blocks a session loop: opening, reading and decoding files run on the
// caller's goroutine (creation) or on a bounded pool of workers that decode ahead into a small
// buffer per playing source; downloads run on their own goroutines. The session loop only
// copies frames out (File.ReadFrame).
package playback

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config is the server configuration file playback needs.
type Config struct {
	// MediaDir is media_dir: the root local files must lie in; "" disables local playback.
	MediaDir string
	// CacheDir is cache_dir, where URL sources are downloaded.
	CacheDir string
	// CacheCleanupInterval is cache_cleanup_interval_secs.
	CacheCleanupInterval time.Duration
	// MaxConcurrentDownloads is max_concurrent_downloads.
	MaxConcurrentDownloads int
	// MaxFileDownloadBytes is max_file_download_bytes; 0 means no limit.
	MaxFileDownloadBytes int64
	// MaxCacheEntries and MaxCacheBytes bound the URL cache (PROTOCOL.md §34); 0 means the
	// defaults (1000 entries, 1 GiB).
	MaxCacheEntries int
	MaxCacheBytes   int64
	// DownloadOrigins is file_download_origins: scheme://host[:port] URLs may be fetched from;
	// empty means any public origin.
	DownloadOrigins []string
	// DownloadNetworks is file_download_networks: special-use networks (private, loopback,
	// link-local, …) that downloads may nevertheless reach.
	DownloadNetworks []netip.Prefix
	// Workers is the size of the decode pool; 0 means 4 × GOMAXPROCS (at least 8).
	Workers int
	// ConnectTimeout bounds connecting to a download's server (PROTOCOL.md §18: 10 s); 0
	// means that.
	ConnectTimeout time.Duration
	// Log receives warnings (cache cleanup failures).
	Log *slog.Logger
}

// Service is the server's file playback: decode workers, URL cache and shared decoders. One
// per server; its methods are safe for concurrent use by every session.
type Service struct {
	cfg       Config
	mediaRoot string // MediaDir with symlinks resolved
	pool      *pool
	cache     *cache

	sharedMu sync.Mutex
	shared   map[string]*sharedStream
}

// New starts the service: the decode workers and, when CacheDir is set, the URL cache (whose
// directory must exist; its regular files are deleted, as at every start-up, §18).
func New(cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		// More workers than CPUs: a worker stuck in a read from a slow disk (NFS media_dir)
		// releases its CPU, and the others keep every other file fed.
		cfg.Workers = max(8, 4*runtime.GOMAXPROCS(0))
	}
	s := &Service{cfg: cfg, shared: make(map[string]*sharedStream)}
	if cfg.MediaDir != "" {
		root, err := filepath.Abs(cfg.MediaDir)
		if err == nil {
			root, err = filepath.EvalSymlinks(root)
		}
		if err != nil {
			return nil, fmt.Errorf("playback: media_dir %q: %w", cfg.MediaDir, err)
		}
		s.mediaRoot = root
	}
	if cfg.CacheDir != "" {
		c, err := newCache(&s.cfg)
		if err != nil {
			return nil, err
		}
		s.cache = c
	}
	s.pool = newPool(cfg.Workers)
	return s, nil
}

// Close stops downloads, the cache cleaner and the decode workers. Call it after every
// session has ended.
func (s *Service) Close() {
	if s.cache != nil {
		s.cache.close()
	}
	s.pool.close()
}

// Errors of local sources whose texts clients match (PROTOCOL.md §18).
var (
	errLocalDisabled = errors.New("Local file playback is disabled (no media_dir configured)")
	errOutsideMedia  = errors.New("File path is outside the allowed media directory")
)

// resolveLocal turns a local source into the real path of a regular file inside media_dir:
// relative paths are taken against the working directory and every symlink is resolved
// before the confinement check, so no link leads out of media_dir.
func (s *Service) resolveLocal(source string) (string, error) {
	if s.mediaRoot == "" {
		return "", errLocalDisabled
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return "", fmt.Errorf("cannot resolve %q: %w", source, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if !within(s.mediaRoot, abs) {
			return "", errOutsideMedia
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("File not found: %s", source)
		}
		return "", fmt.Errorf("cannot open %s: %w", source, err)
	}
	if !within(s.mediaRoot, real) {
		return "", errOutsideMedia
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("cannot open %s: %w", source, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file: %s", source)
	}
	return real, nil
}

// within reports whether path lies inside root (both clean and absolute).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// IsURL reports whether a create_with_file source is a URL (PROTOCOL.md §6).
func IsURL(source string) bool {
	return strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://")
}

// URLKey is the cache key and shared_playback_id of a URL source: the SHA-1 hex of the URL,
// with the sorted header pairs mixed in when there are any (§18).
func URLKey(url string, headers map[string]string) string {
	h := sha1.New()
	h.Write([]byte(url))
	if len(headers) > 0 {
		keys := make([]string, 0, len(headers))
		for k := range headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h.Write([]byte{0})
			h.Write([]byte(k))
			h.Write([]byte{0})
			h.Write([]byte(headers[k]))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// cacheDirMode is the mode of a cache_dir that rtpbridge creates: the
// cache holds downloaded media only rtpbridge reads.
const cacheDirMode = 0o750

// CreateCacheDir creates cache_dir (and missing parents) at start-up, as
// PROTOCOL.md §18 says; an existing directory is left as it is. Validate
// only checks that a non-default cache_dir has an existing parent and that
// an existing one is writable, so a cache_dir that does not exist yet is
// first created here. The error, a *KeyError for cache_dir, says who
// rtpbridge runs as and what gives it a writable cache_dir (a tmpfs or
// volume for a read-only container, ownership for another uid).
func (c *Config) CreateCacheDir() error {
	dir := filepath.Clean(c.CacheDir)
	if err := os.MkdirAll(dir, cacheDirMode); err != nil {
		return &KeyError{Key: "cache_dir", Value: strconv.Quote(c.CacheDir),
			Rule: "could not be created at start-up", Err: withDirAdvice(dir, err)}
	}
	return nil
}

// withDirAdvice appends to err, a failure to create or write dir, what to
// do about it (see dirAdvice); err is returned as it is when there is no
// advice for its cause. The result still wraps err.
func withDirAdvice(dir string, err error) error {
	if advice := dirAdvice(dir, err); advice != "" {
		return fmt.Errorf("%w; %s, or configure a writable directory", err, advice)
	}
	return err
}

// nearestExisting returns dir, or its closest ancestor that exists, with
// its FileInfo (nil when not even the root could be examined).
func nearestExisting(dir string) (string, os.FileInfo) {
	for d := dir; ; {
		if fi, err := os.Stat(d); err == nil {
			return d, fi
		}
		parent := filepath.Dir(d)
		if parent == d {
			return d, nil
		}
		d = parent
	}
}

package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCreateCacheDir(t *testing.T) {
	t.Run("missing directory is created", func(t *testing.T) {
		c := Default()
		c.CacheDir = filepath.Join(t.TempDir(), "cache")
		if err := c.CreateCacheDir(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(c.CacheDir)
		if err != nil || !fi.IsDir() {
			t.Fatalf("cache_dir not created: %v", err)
		}
		if perm := fi.Mode().Perm(); perm&^cacheDirMode != 0 {
			t.Errorf("mode %04o, want at most %04o", perm, cacheDirMode)
		}
	})
	t.Run("existing directory is kept", func(t *testing.T) {
		c := Default()
		c.CacheDir = t.TempDir()
		keep := filepath.Join(c.CacheDir, "entry.wav")
		if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateCacheDir(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failure is a cache_dir KeyError", func(t *testing.T) {
		// A parent that is a regular file defeats root as well.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		c.CacheDir = filepath.Join(file, "cache")
		err := c.CreateCacheDir()
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != "cache_dir" || !strings.Contains(err.Error(), "could not be created") {
			t.Fatalf("got %v", err)
		}
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("the cause is not wrapped: %v", err)
		}
	})
}

// TestDirAdvice: the two causes an operator meets in containers (a read-only root file system,
// a uid that does not own a bind mount) come with the fix.
func TestDirAdvice(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "cache")
	rofs := withDirAdvice(missing, &fs.PathError{Op: "mkdir", Path: missing, Err: syscall.EROFS})
	for _, want := range []string{dir + " is on a read-only file system", "--tmpfs /tmp", "volume", "configure a writable directory"} {
		if !strings.Contains(rofs.Error(), want) {
			t.Errorf("read-only advice lacks %q: %v", want, rofs)
		}
	}
	if !errors.Is(rofs, syscall.EROFS) {
		t.Errorf("cause not wrapped: %v", rofs)
	}

	perm := withDirAdvice(dir, &fs.PathError{Op: "open", Path: dir, Err: syscall.EACCES})
	uid := os.Getuid()
	for _, want := range []string{"rtpbridge runs as uid " + strconv.Itoa(uid), dir + " belongs to uid " + strconv.Itoa(uid), "chown", "configure a writable directory"} {
		if !strings.Contains(perm.Error(), want) {
			t.Errorf("permission advice lacks %q: %v", want, perm)
		}
	}
	if uid != 0 && !strings.Contains(perm.Error(), "RTPBRIDGE_USER="+strconv.Itoa(uid)) {
		t.Errorf("permission advice does not offer running as the owner: %v", perm)
	}

	other := &fs.PathError{Op: "mkdir", Path: missing, Err: syscall.ENOTDIR}
	if got := withDirAdvice(missing, other); got != error(other) {
		t.Errorf("advice for an unrelated cause: %v", got)
	}
}

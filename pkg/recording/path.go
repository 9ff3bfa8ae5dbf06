package recording

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// ErrInvalidPath marks a file_path that breaks the path rules of PROTOCOL.md §7 (the client's
// mistake: INVALID_PARAMS). Other errors from Create are RECORDING_ERROR.
var ErrInvalidPath = errors.New("invalid recording path")

// Dir is recording_dir: where recordings are created, listed, downloaded and deleted. Every
// access goes through a directory handle on the resolved recording_dir (os.Root, which walks
// each component with openat and O_NOFOLLOW), so a symlink swapped in after a check can never
// lead a create, read or delete outside it.
type Dir struct {
	path string // as configured
}

// NewDir returns the recording directory at path (recording_dir). Nothing is checked yet: the
// directory may be created or replaced while rtpbridge runs, so each use resolves it again.
func NewDir(path string) *Dir { return &Dir{path: path} }

// Path is recording_dir as configured.
func (d *Dir) Path() string { return d.path }

// resolve returns the symlink-resolved recording_dir and a handle on it.
func (d *Dir) resolve() (string, *os.Root, error) {
	abs, err := filepath.Abs(d.path)
	if err != nil {
		return "", nil, fmt.Errorf("recording_dir %s: %w", d.path, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", nil, fmt.Errorf("recording_dir %s: %w", d.path, err)
	}
	root, err := os.OpenRoot(resolved)
	if err != nil {
		return "", nil, fmt.Errorf("recording_dir %s: %w", d.path, err)
	}
	return resolved, root, nil
}

// inside returns target relative to dir if target is dir or lies beneath it.
func inside(dir, target string) (string, bool) {
	rel, err := filepath.Rel(dir, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// hasDotDot reports whether p has a ".." component.
func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// Create makes a new recording file at filePath under the rules of PROTOCOL.md §7: absolute, no
// ".." component, recording_dir and the parent directory exist, the symlink-resolved parent lies
// inside the resolved recording_dir, and the file does not exist yet (exclusive create). It
// returns the open file and the resolved path that file_path fields report. Rule violations
// wrap ErrInvalidPath.
func (d *Dir) Create(filePath string) (*os.File, string, error) {
	if filePath == "" || !filepath.IsAbs(filePath) {
		return nil, "", fmt.Errorf("%w: file_path must be absolute", ErrInvalidPath)
	}
	if hasDotDot(filePath) {
		return nil, "", fmt.Errorf("%w: file_path must not contain '..'", ErrInvalidPath)
	}
	base := filepath.Base(filePath)
	if strings.HasSuffix(filePath, "/") || base == "/" || base == "." {
		return nil, "", fmt.Errorf("%w: file_path must name a file", ErrInvalidPath)
	}
	dir, root, err := d.resolve()
	if err != nil {
		return nil, "", fmt.Errorf("%w: recording directory does not exist: %v", ErrInvalidPath, err)
	}
	defer root.Close()
	parent, err := filepath.EvalSymlinks(filepath.Dir(filePath))
	if err != nil {
		return nil, "", fmt.Errorf("%w: parent directory does not exist: %s", ErrInvalidPath, filepath.Dir(filePath))
	}
	rel, ok := inside(dir, parent)
	if !ok {
		return nil, "", fmt.Errorf("%w: file_path must be inside the recording directory %s", ErrInvalidPath, dir)
	}
	// O_EXCL with O_CREATE also refuses a final component that is a symlink, dangling or not;
	// the parent is reached through the root's directory handle, component by component.
	f, err := root.OpenFile(filepath.Join(rel, base), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("recording file already exists: %s", filepath.Join(parent, base))
		}
		return nil, "", fmt.Errorf("cannot create recording file %s: %w", filepath.Join(parent, base), err)
	}
	return f, filepath.Join(parent, base), nil
}

// RemoveCreated deletes a file Create made (at the resolved path it returned) when the recording
// could not start after all.
func (d *Dir) RemoveCreated(resolved string) error {
	dir, root, err := d.resolve()
	if err != nil {
		return err
	}
	defer root.Close()
	rel, ok := inside(dir, resolved)
	if !ok || rel == "." {
		return fmt.Errorf("%s is not inside the recording directory", resolved)
	}
	return root.Remove(rel)
}

// Lookup errors of Open and Remove, each an HTTP answer of PROTOCOL.md §24.
var (
	// ErrDirUnavailable: recording_dir cannot be resolved (500).
	ErrDirUnavailable = errors.New("recording directory not accessible")
	// ErrNotFound: nothing at that path (404), also for traversal to a missing target.
	ErrNotFound = errors.New("recording not found")
	// ErrOutside: the path exists but resolves outside recording_dir (403).
	ErrOutside = errors.New("path outside recording directory")
)

// locate resolves name (relative to recording_dir, as a client sent it) to a path relative to
// the resolved recording_dir and the root handle to reach it through.
func (d *Dir) locate(name string) (string, *os.Root, error) {
	dir, root, err := d.resolve()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrDirUnavailable, err)
	}
	// An absolute name is still taken relative to recording_dir (Join), then resolved: whatever
	// it names must lie inside.
	target, err := filepath.EvalSymlinks(filepath.Join(dir, name))
	if err != nil {
		root.Close()
		return "", nil, ErrNotFound
	}
	rel, ok := inside(dir, target)
	if !ok {
		root.Close()
		return "", nil, ErrOutside
	}
	return rel, root, nil
}

// Open opens the recording at name (relative to recording_dir) for reading. It is a regular
// file or ErrNotFound.
func (d *Dir) Open(name string) (*os.File, error) {
	rel, root, err := d.locate(name)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("%w: %v", ErrOutside, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound
	}
	return f, nil
}

// Remove deletes the recording at name (relative to recording_dir).
func (d *Dir) Remove(name string) error {
	rel, root, err := d.locate(name)
	if err != nil {
		return err
	}
	defer root.Close()
	if rel == "." {
		return fmt.Errorf("refusing to delete the recording directory itself")
	}
	if err := root.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNotFound
		}
		return fmt.Errorf("delete %s: %w", rel, err)
	}
	return nil
}

// listDepth is how deep List descends below recording_dir (§24).
const listDepth = 10

// recordingExt reports whether name is a recording List shows: .pcap (§24), .wav and .ogg (§33).
func recordingExt(name string) bool {
	return strings.HasSuffix(name, ".pcap") || strings.HasSuffix(name, ".wav") || strings.HasSuffix(name, ".ogg")
}

// List returns the recordings beneath recording_dir (regular files, at most listDepth levels
// down, symlinks not followed) as sorted slash-separated paths relative to it.
func (d *Dir) List() ([]string, error) {
	dir, root, err := d.resolve()
	if err != nil {
		return nil, err
	}
	root.Close()
	var out []string
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // an unreadable subdirectory hides its files, not the listing
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			if rel != "." && strings.Count(rel, string(filepath.Separator)) >= listDepth {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && recordingExt(e.Name()) {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	// WalkDir's order is per directory ("a/x" before "a.pcap"); the listing sorts whole paths.
	sort.Strings(out)
	return out, nil
}

package recording

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCreatePathRules(t *testing.T) {
	base := t.TempDir()
	rec := filepath.Join(base, "rec")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{rec, filepath.Join(rec, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink to recording_dir (accepted: the resolved parent is inside), one pointing out.
	if err := os.Symlink(rec, filepath.Join(base, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(rec, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "target.pcap"), filepath.Join(rec, "link.pcap")); err != nil {
		t.Fatal(err)
	}
	d := NewDir(rec)

	invalid := []string{
		"", "relative.pcap", rec + "/../rec/x.pcap", rec + "/sub/../x.pcap",
		filepath.Join(outside, "x.pcap"), rec + "/escape/x.pcap", rec + "/missing/x.pcap", "/x.pcap", rec + "/",
	}
	for _, p := range invalid {
		if f, _, err := d.Create(p); !errors.Is(err, ErrInvalidPath) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Create(%q): %v, want ErrInvalidPath", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "x.pcap")); err == nil {
		t.Fatal("a file was created outside recording_dir")
	}

	f, resolved, err := d.Create(filepath.Join(base, "alias", "sub", "a.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if want := filepath.Join(rec, "sub", "a.pcap"); resolved != want {
		t.Fatalf("resolved %q, want %q", resolved, want)
	}
	// Exclusive create: an existing file, or a symlink in its place, is RECORDING_ERROR.
	for _, p := range []string{filepath.Join(rec, "sub", "a.pcap"), filepath.Join(rec, "link.pcap")} {
		if _, _, err := d.Create(p); err == nil || errors.Is(err, ErrInvalidPath) {
			t.Errorf("Create(%q) over an existing name: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "target.pcap")); err == nil {
		t.Fatal("the create followed a symlink out of recording_dir")
	}

	// recording_dir missing.
	if _, _, err := NewDir(filepath.Join(base, "nope")).Create(filepath.Join(base, "nope", "x.pcap")); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("missing recording_dir: %v", err)
	}
}

func TestListOpenRemove(t *testing.T) {
	rec := t.TempDir()
	outside := t.TempDir()
	files := []string{"b.pcap", "a/x.pcap", "a.pcap", "c.wav", "d.ogg", "e.txt", "deep/1/2/3/4/5/6/7/8/9/f.pcap", "deep/1/2/3/4/5/6/7/8/9/10/g.pcap"}
	for _, p := range files {
		full := filepath.Join(rec, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.pcap"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.pcap"), filepath.Join(rec, "out.pcap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b.pcap", filepath.Join(rec, "in.pcap")); err != nil {
		t.Fatal(err)
	}
	d := NewDir(rec)
	got, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.pcap", "a/x.pcap", "b.pcap", "c.wav", "d.ogg", "deep/1/2/3/4/5/6/7/8/9/f.pcap"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}

	f, err := d.Open("a/x.pcap")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, err := d.Open("in.pcap"); err != nil {
		t.Fatalf("a symlink inside: %v", err)
	} else {
		f.Close()
	}
	for name, want := range map[string]error{
		"out.pcap": ErrOutside, "../" + filepath.Base(outside) + "/secret.pcap": ErrOutside,
		outside + "/secret.pcap": ErrNotFound, // absolute names are taken relative to recording_dir
		"missing.pcap":           ErrNotFound, "../nothing-here": ErrNotFound, "a": ErrNotFound,
	} {
		if f, err := d.Open(name); !errors.Is(err, want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want %v", name, err, want)
		}
	}
	if err := d.Remove("out.pcap"); !errors.Is(err, ErrOutside) {
		t.Fatalf("Remove through a symlink out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret.pcap")); err != nil {
		t.Fatal("the file outside was deleted")
	}
	if err := d.Remove("b.pcap"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("b.pcap"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := NewDir(filepath.Join(rec, "nope")).Open("a.pcap"); !errors.Is(err, ErrDirUnavailable) {
		t.Fatalf("missing recording_dir: %v", err)
	}
}

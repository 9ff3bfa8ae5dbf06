package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// exampleFile is rtpbridge.toml.example at the repository root.
const exampleFile = "../../rtpbridge.toml.example"

// commentedKey matches the example's "# key = value" lines; descriptions
// use "## " so they never match.
var commentedKey = regexp.MustCompile(`^# ([a-z_]+) = (.*)$`)

// TestExampleFileMatchesDefaults keeps rtpbridge.toml.example from drifting
// from the code: it must mention every key exactly once, load cleanly as
// is, and with every key uncommented it must equal Default().
func TestExampleFileMatchesDefaults(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatalf("reading the example: %v", err)
	}

	asIs, err := LoadFile(exampleFile)
	if err != nil {
		t.Fatalf("example as-is: %v", err)
	}
	if !reflect.DeepEqual(asIs, Default()) {
		t.Fatalf("example as-is is not the defaults: %+v", asIs)
	}

	seen := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if m := commentedKey.FindStringSubmatch(line); m != nil {
			seen[m[1]]++
			lines[i] = m[1] + " = " + m[2]
		}
	}
	for _, k := range KeyNames() {
		if seen[k] != 1 {
			t.Errorf("key %q appears %d times in the example, want once", k, seen[k])
		}
	}

	uncommented := filepath.Join(t.TempDir(), "example.toml")
	if err := os.WriteFile(uncommented, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	// LoadFile rejects unknown keys, so a documented key that the code does
	// not know also fails here.
	got, err := LoadFile(uncommented)
	if err != nil {
		t.Fatalf("example uncommented: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("example uncommented:\n got %+v\nwant %+v", got, want)
	}
}

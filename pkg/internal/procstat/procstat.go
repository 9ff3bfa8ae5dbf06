// Package procstat reads this process's resource use from /proc for tests that hold the code to
// a memory or descriptor budget.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS is the process's resident set size, the C heap (FFmpeg, libopus) included, which Go's
// heap statistics do not see.
func RSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("procstat: /proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("procstat: /proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// OpenFiles counts the process's open file descriptors.
func OpenFiles() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

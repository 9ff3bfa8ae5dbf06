package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procTimes is what /proc/PID/stat says about a process's CPU use and memory.
type procTimes struct {
	UTime, STime uint64 // clock ticks (fields 14 and 15)
	RSSPages     int64  // field 24
}

// parseProcStat reads /proc/PID/stat content. The command name (field 2) is in parentheses
// and may itself contain spaces and parentheses, so fields are counted from the last ')'.
func parseProcStat(s string) (procTimes, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procTimes{}, errors.New("proc stat: no ')' after the command name")
	}
	// After ")": field 3 (state) onwards.
	f := strings.Fields(s[i+1:])
	const (
		utime = 14 - 3
		stime = 15 - 3
		rss   = 24 - 3
	)
	if len(f) <= rss {
		return procTimes{}, fmt.Errorf("proc stat: %d fields after the command name, want > %d", len(f), rss)
	}
	var t procTimes
	var err error
	if t.UTime, err = strconv.ParseUint(f[utime], 10, 64); err != nil {
		return procTimes{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	if t.STime, err = strconv.ParseUint(f[stime], 10, 64); err != nil {
		return procTimes{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	if t.RSSPages, err = strconv.ParseInt(f[rss], 10, 64); err != nil {
		return procTimes{}, fmt.Errorf("proc stat: rss: %w", err)
	}
	return t, nil
}

// machineTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type machineTimes struct {
	Total, Idle uint64 // Idle includes iowait
}

// parseMachineStat reads the first ("cpu ") line of /proc/stat: user nice system idle iowait
// irq softirq steal [guest guest_nice]. guest time is already inside user, so only the first
// eight fields are summed.
func parseMachineStat(s string) (machineTimes, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return machineTimes{}, errors.New("/proc/stat: no aggregate cpu line")
	}
	var t machineTimes
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return machineTimes{}, fmt.Errorf("/proc/stat: field %d: %w", i+1, err)
		}
		t.Total += n
		if i == 3 || i == 4 { // idle, iowait
			t.Idle += n
		}
	}
	return t, nil
}

// clockTicks returns the kernel's clock tick rate (USER_HZ) from `getconf CLK_TCK`, or 100
// (Linux's fixed USER_HZ on every mainstream architecture) with measured=false when getconf
// cannot be run.
func clockTicks() (hz int, measured bool) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n, true
		}
	}
	return 100, false
}

// cpuProbe reads a cumulative CPU time of the thing being measured.
type cpuProbe struct {
	Label      string
	Resolution time.Duration
	read       func() (time.Duration, error)
	rss        func() (int64, error) // bytes; nil when unknown
}

// procProbe measures process pid through /proc/pid/stat (utime + stime).
func procProbe(pid int) *cpuProbe {
	hz, measured := clockTicks()
	label := fmt.Sprintf("/proc/%d/stat utime+stime, CLK_TCK %d", pid, hz)
	if !measured {
		label += " (getconf failed: assumed)"
	}
	path := fmt.Sprintf("/proc/%d/stat", pid)
	readStat := func() (procTimes, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return procTimes{}, err
		}
		return parseProcStat(string(b))
	}
	return &cpuProbe{
		Label:      label,
		Resolution: time.Second / time.Duration(hz),
		read: func() (time.Duration, error) {
			t, err := readStat()
			if err != nil {
				return 0, err
			}
			return time.Duration(t.UTime+t.STime) * time.Second / time.Duration(hz), nil
		},
		rss: func() (int64, error) {
			t, err := readStat()
			return t.RSSPages * int64(os.Getpagesize()), err
		},
	}
}

// selfCPU is this process's user+system CPU time (getrusage RUSAGE_SELF).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// selfProbe measures this process (getrusage): the in-process test's server and load tool
// together.
func selfProbe(label string) *cpuProbe {
	return &cpuProbe{Label: label, Resolution: time.Microsecond, read: selfCPU}
}

// readMachine samples /proc/stat; ok=false when unavailable.
func readMachine() (machineTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}, false
	}
	t, err := parseMachineStat(string(b))
	return t, err == nil
}

// loadAvg returns the first three fields of /proc/loadavg, or "" when unavailable.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

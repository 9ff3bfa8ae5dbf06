package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// idleResult is what -idle measures: the server's own gauges before and after opening the idle
// sessions, and the cost per endpoint.
type idleResult struct {
	Sessions  int `json:"sessions"`
	Endpoints int `json:"endpoints"`
	Before    gauges
	After     gauges
	// Per endpoint (after - before) / endpoints, the connections' and sessions' own cost included.
	RSSPerEndpoint        float64 `json:"rss_bytes_per_endpoint"`
	HeapPerEndpoint       float64 `json:"heap_inuse_bytes_per_endpoint"`
	GoroutinesPerEndpoint float64 `json:"goroutines_per_endpoint"`
	// Per endpoint, without the sessions' own cost (measured between the two steps).
	RSSPerLeg        float64 `json:"rss_bytes_per_leg"`
	HeapPerLeg       float64 `json:"heap_inuse_bytes_per_leg"`
	GoroutinesPerLeg float64 `json:"goroutines_per_leg"`
	SessionsOnly     gauges
}

// gauges are the /metrics values -idle reads.
type gauges struct {
	RSS        float64 `json:"process_resident_memory_bytes"`
	HeapInuse  float64 `json:"go_memstats_heap_inuse_bytes"`
	Goroutines float64 `json:"go_goroutines"`
	StackInuse float64 `json:"go_memstats_stack_inuse_bytes"`
}

// runIdle opens sessions, each with two plain RTP legs from endpoint.create_offer and no
// media, and reads the server's RSS, heap and goroutines from its /metrics before, after the
// sessions alone, and after the legs. Everything is destroyed at the end.
func runIdle(ctx context.Context, url string, sessions int, progress io.Writer) (*idleResult, error) {
	metricsURL := strings.Replace(strings.Replace(url, "ws://", "http://", 1), "wss://", "https://", 1)
	metricsURL = strings.TrimSuffix(metricsURL, "/") + "/metrics"
	settle := func() (gauges, error) {
		time.Sleep(2 * time.Second) // let the server's GC and the kernel settle
		return readGauges(metricsURL)
	}
	res := &idleResult{Sessions: sessions, Endpoints: 2 * sessions}
	var err error
	if res.Before, err = settle(); err != nil {
		return nil, err
	}
	conns := make([]*control, 0, sessions)
	defer func() {
		for _, c := range conns {
			_ = c.call(context.Background(), 5*time.Second, "session.destroy", nil, nil)
			c.close()
		}
	}()
	for i := 0; i < sessions; i++ {
		c, err := dialControl(ctx, url, 10*time.Second, nil)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		if err := c.call(ctx, 5*time.Second, "session.create", nil, nil); err != nil {
			return nil, fmt.Errorf("session %d: %w", i, err)
		}
	}
	if res.SessionsOnly, err = settle(); err != nil {
		return nil, err
	}
	for i, c := range conns {
		for range 2 {
			if err := c.call(ctx, 5*time.Second, "endpoint.create_offer", map[string]any{"type": "rtp"}, nil); err != nil {
				return nil, fmt.Errorf("session %d: %w", i, err)
			}
		}
		if progress != nil && (i+1)%500 == 0 {
			fmt.Fprintf(progress, "rtpbridge-load: %d sessions with 2 legs each\n", i+1)
		}
	}
	if res.After, err = settle(); err != nil {
		return nil, err
	}
	n := float64(res.Endpoints)
	res.RSSPerEndpoint = (res.After.RSS - res.Before.RSS) / n
	res.HeapPerEndpoint = (res.After.HeapInuse - res.Before.HeapInuse) / n
	res.GoroutinesPerEndpoint = (res.After.Goroutines - res.Before.Goroutines) / n
	res.RSSPerLeg = (res.After.RSS - res.SessionsOnly.RSS) / n
	res.HeapPerLeg = (res.After.HeapInuse - res.SessionsOnly.HeapInuse) / n
	res.GoroutinesPerLeg = (res.After.Goroutines - res.SessionsOnly.Goroutines) / n
	return res, nil
}

// readGauges scrapes the four gauges from a Prometheus text exposition.
func readGauges(url string) (gauges, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return gauges{}, err
	}
	defer resp.Body.Close()
	var g gauges
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		var dst *float64
		switch name {
		case "process_resident_memory_bytes":
			dst = &g.RSS
		case "go_memstats_heap_inuse_bytes":
			dst = &g.HeapInuse
		case "go_goroutines":
			dst = &g.Goroutines
		case "go_memstats_stack_inuse_bytes":
			dst = &g.StackInuse
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return gauges{}, fmt.Errorf("%s: %q: %w", name, value, err)
		}
		*dst = v
		found++
	}
	if err := sc.Err(); err != nil {
		return gauges{}, err
	}
	if found != 4 {
		return gauges{}, fmt.Errorf("%s: found %d of process_resident_memory_bytes, go_memstats_heap_inuse_bytes, go_goroutines, go_memstats_stack_inuse_bytes", url, found)
	}
	return g, nil
}

func writeIdle(w io.Writer, r *idleResult) {
	fmt.Fprintf(w, "idle: %d sessions, %d plain RTP endpoints, no media\n", r.Sessions, r.Endpoints)
	fmt.Fprintf(w, "  server before:        RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, %.0f goroutines\n", r.Before.RSS/(1<<20), r.Before.HeapInuse/(1<<20), r.Before.StackInuse/(1<<20), r.Before.Goroutines)
	fmt.Fprintf(w, "  with sessions only:   RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, %.0f goroutines\n", r.SessionsOnly.RSS/(1<<20), r.SessionsOnly.HeapInuse/(1<<20), r.SessionsOnly.StackInuse/(1<<20), r.SessionsOnly.Goroutines)
	fmt.Fprintf(w, "  with the endpoints:   RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, %.0f goroutines\n", r.After.RSS/(1<<20), r.After.HeapInuse/(1<<20), r.After.StackInuse/(1<<20), r.After.Goroutines)
	fmt.Fprintf(w, "  per endpoint, all in: RSS %.1f KiB, heap %.1f KiB, %.2f goroutines (connection and session included)\n", r.RSSPerEndpoint/1024, r.HeapPerEndpoint/1024, r.GoroutinesPerEndpoint)
	fmt.Fprintf(w, "  per endpoint, leg:    RSS %.1f KiB, heap %.1f KiB, %.2f goroutines\n", r.RSSPerLeg/1024, r.HeapPerLeg/1024, r.GoroutinesPerLeg)
}

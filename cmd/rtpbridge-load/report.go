package main

import (
	"fmt"
	"io"
	"strings"
)

// result is the summary of one run; -json prints it as is.
type result struct {
	Date            string           `json:"date"`
	Server          string           `json:"server"`
	ServerPID       int              `json:"server_pid,omitempty"`
	Spawned         string           `json:"spawned,omitempty"`
	Calls           int              `json:"calls"`
	CallsUp         int              `json:"calls_up"`
	CallsFailed     int              `json:"calls_failed"`
	CallsNotStarted int              `json:"calls_not_started,omitempty"`
	Errors          map[string]int   `json:"errors"`
	Events          map[string]int64 `json:"events"`
	CodecA          string           `json:"codec_a"`
	CodecB          string           `json:"codec_b"`
	Bidirectional   bool             `json:"bidirectional"`
	Media           string           `json:"media"`
	MediaSeconds    float64          `json:"media_seconds"`
	MediaRate       int              `json:"media_rate_hz"`
	FramesA         int              `json:"frames_a"`
	FramesB         int              `json:"frames_b"`
	RampS           float64          `json:"ramp_s"`
	SettleS         float64          `json:"settle_s"`
	DurationS       float64          `json:"duration_s"`
	WindowS         float64          `json:"window_s"`
	Interrupted     bool             `json:"interrupted"`

	Directions        []direction `json:"directions"`
	ForwardedInWindow int64       `json:"forwarded_in_window"`
	ServerCPU         *serverCPU  `json:"server_cpu,omitempty"`
	ServerRSSBytes    int64       `json:"server_rss_bytes,omitempty"`
	ToolCPU           *toolCPU    `json:"tool_cpu,omitempty"`
	Pacing            pacing      `json:"pacing"`
	Cores             int         `json:"cores"`
	MachineBusyPct    float64     `json:"machine_busy_pct_of_one_core"`
	LoadAvgStart      string      `json:"loadavg_start"`
	LoadAvgEnd        string      `json:"loadavg_end"`
}

// direction is one direction of every call, summed.
type direction struct {
	Name          string  `json:"name"`  // A→B or B→A
	Path          string  `json:"path"`  // codec → codec
	Route         string  `json:"route"` // passthrough or transcode
	Sent          int64   `json:"sent"`  // packets sent inside the window
	Received      int64   `json:"received"`
	Lost          int64   `json:"lost"`
	LossPct       float64 `json:"loss_pct"`
	Duplicates    int64   `json:"duplicates"`
	SendErrors    int64   `json:"send_errors"`
	Unmatched     int64   `json:"unmatched"`      // no send time to pair with
	Misordered    int64   `json:"misordered"`     // before the first packet of the stream
	PairingErrors int64   `json:"pairing_errors"` // arrived before sent: 1:1 pairing broken
	Unexpected    int64   `json:"unexpected,omitempty"`
	RTCP          int64   `json:"rtcp"`
	Invalid       int64   `json:"invalid"`
	Latency       latency `json:"latency"`
}

type latency struct {
	Samples uint64  `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	MeanMs  float64 `json:"mean_ms"`
}

type serverCPU struct {
	Source         string  `json:"source"`
	InProcess      bool    `json:"in_process"` // figures include the load tool itself
	ResolutionMs   float64 `json:"resolution_ms"`
	Seconds        float64 `json:"seconds"`
	CorePct        float64 `json:"core_pct"`
	CorePctPerCall float64 `json:"core_pct_per_call"`
	NsPerPacket    float64 `json:"ns_per_forwarded_packet"`
	Error          string  `json:"error,omitempty"`
}

type toolCPU struct {
	Seconds        float64 `json:"seconds"`
	CorePct        float64 `json:"core_pct"`
	IncludesServer bool    `json:"includes_server"`
}

type pacing struct {
	StreamsStarted int     `json:"streams"`
	Packets        int64   `json:"packets_in_window"`
	LateOver2ms    int64   `json:"late_over_2ms"`
	LateOver20ms   int64   `json:"late_over_20ms"`
	LatenessP99Ms  float64 `json:"lateness_p99_ms"`
	LatenessMaxMs  float64 `json:"lateness_max_ms"`
	SendErrors     int64   `json:"send_errors"`
}

// writeText prints the human-readable report.
func writeText(w io.Writer, r *result) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	mode := "both directions"
	if !r.Bidirectional {
		mode = "A→B only"
	}
	p("rtpbridge-load  %s", r.Date)
	srv := r.Server
	if r.Spawned != "" {
		srv += " (spawned " + r.Spawned + ")"
	}
	if r.ServerPID > 0 {
		srv += fmt.Sprintf(" pid %d", r.ServerPID)
	}
	p("server     %s", srv)
	p("calls      %d requested, %d up, %d failed%s; codecs A %s, B %s, %s",
		r.Calls, r.CallsUp, r.CallsFailed, notStarted(r), r.CodecA, r.CodecB, mode)
	for _, k := range sortedKeys(r.Errors) {
		p("  error    %d × %s", r.Errors[k], k)
	}
	p("media      %s: %.1f s at %d Hz, %d/%d frames of 20 ms (A/B), looped, every call from its own offset",
		r.Media, r.MediaSeconds, r.MediaRate, r.FramesA, r.FramesB)
	if r.WindowS == 0 {
		p("window     not measured%s", map[bool]string{true: " (interrupted)", false: ""}[r.Interrupted])
		writeEvents(w, r)
		return
	}
	intr := ""
	if r.Interrupted {
		intr = " (interrupted: shorter than asked)"
	}
	p("window     %.2f s%s, after %.1f s ramp + %.1f s settle; setup and teardown excluded", r.WindowS, intr, r.RampS, r.SettleS)
	for _, d := range r.Directions {
		if d.Sent == 0 && d.Unexpected == 0 && strings.HasPrefix(d.Route, "none") {
			p("%s        %s", d.Name, d.Route)
			continue
		}
		p("%s %s  %s", d.Name, d.Path, d.Route)
		p("  packets  sent %d, received %d, lost %d (%.3f %%), duplicates %d, send errors %d",
			d.Sent, d.Received, d.Lost, d.LossPct, d.Duplicates, d.SendErrors)
		if d.Unmatched+d.Misordered+d.PairingErrors > 0 {
			p("  pairing  unmatched %d, misordered %d, arrived-before-sent %d (latency of these not counted)",
				d.Unmatched, d.Misordered, d.PairingErrors)
		}
		l := d.Latency
		p("  latency  p50 %.3f  p95 %.3f  p99 %.3f  max %.3f  mean %.3f ms  (%d samples)",
			l.P50Ms, l.P95Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.Samples)
	}
	p("           latency = arrival of the k-th packet at the far peer − send of the k-th packet;")
	p("           it includes two loopback hops and this tool's own scheduling delay")
	if sc := r.ServerCPU; sc != nil {
		if sc.Error != "" {
			p("server CPU not measured: %s", sc.Error)
		} else {
			who := "server"
			if sc.InProcess {
				who = "server + load tool (in-process)"
			}
			p("server CPU %.2f s = %.1f %% of one core (%.2f %% per call); %.1f µs per forwarded packet",
				sc.Seconds, sc.CorePct, sc.CorePctPerCall, sc.NsPerPacket/1000)
			p("           %s, %d packets delivered to peers in the window; %s, resolution %.0f ms",
				who, r.ForwardedInWindow, sc.Source, sc.ResolutionMs)
		}
	} else {
		p("server CPU not measured (give -pid or -spawn)")
	}
	if r.ServerRSSBytes > 0 {
		p("server RSS %.1f MiB at the end of the window", float64(r.ServerRSSBytes)/(1<<20))
	}
	if t := r.ToolCPU; t != nil {
		note := "getrusage, this process"
		if t.IncludesServer {
			note += ", which also runs the server"
		}
		p("tool CPU   %.2f s = %.1f %% of one core (%s)", t.Seconds, t.CorePct, note)
	}
	pc := r.Pacing
	p("pacing     %d streams, %d packets in the window; late > 2 ms: %d, > 20 ms: %d; lateness p99 %.2f ms, max %.2f ms",
		pc.StreamsStarted, pc.Packets, pc.LateOver2ms, pc.LateOver20ms, pc.LatenessP99Ms, pc.LatenessMaxMs)
	if pc.LateOver20ms > 0 {
		p("           WARNING: the load tool sent packets more than a frame late; it was starved of CPU")
	}
	p("machine    %d cores, %.0f %% of one core busy in the window (everything on the box); loadavg %s → %s",
		r.Cores, r.MachineBusyPct, r.LoadAvgStart, r.LoadAvgEnd)
	writeEvents(w, r)
}

func notStarted(r *result) string {
	if r.CallsNotStarted > 0 {
		return fmt.Sprintf(", %d not started", r.CallsNotStarted)
	}
	return ""
}

func writeEvents(w io.Writer, r *result) {
	if len(r.Events) == 0 {
		return
	}
	var parts []string
	for _, k := range sortedKeys(r.Events) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Events[k]))
	}
	fmt.Fprintf(w, "events     %s\n", strings.Join(parts, ", "))
}

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// loadConfig is one load run.
type loadConfig struct {
	URL           string
	Calls         int
	Duration      time.Duration // measurement window
	Ramp          time.Duration // call setups are spread over this
	Settle        time.Duration // after the last setup, before the window opens
	Grace         time.Duration // after the window, for packets in flight
	CodecA        codec.Codec
	CodecB        codec.Codec
	Media         string
	Bidirectional bool
	ServerCPU     *cpuProbe // nil: server CPU not measured
	InProcess     bool      // the server runs inside this process (tests)
	Progress      io.Writer // progress lines; nil = none
	WebRTCA       bool      // leg A is a WebRTC client (webrtc.go)
	Record        string    // "", or every call's session is recorded: pcap, wav or ogg (recording.go)
	RecordDir     string    // the server's recording_dir, where -record files go
}

// runner holds the state of one run.
type runner struct {
	cfg   loadConfig
	clk   *clock
	win   *window
	pacer *pacer
	legA  legSpec
	legB  legSpec

	mu     sync.Mutex
	errors map[string]int
	events map[string]int64
}

func (r *runner) countEvent(name string) {
	r.mu.Lock()
	r.events[name]++
	r.mu.Unlock()
}

func (r *runner) countError(key string) {
	r.mu.Lock()
	r.errors[key]++
	r.mu.Unlock()
}

func (r *runner) progress(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "rtpbridge-load: "+format+"\n", a...)
	}
}

// cpuSample is everything read at each edge of the window.
type cpuSample struct {
	at        int64
	server    time.Duration
	serverErr error
	self      time.Duration
	machine   machineTimes
	machineOK bool
}

func (r *runner) sample() cpuSample {
	s := cpuSample{at: r.clk.now()}
	if r.cfg.ServerCPU != nil {
		s.server, s.serverErr = r.cfg.ServerCPU.read()
	}
	s.self, _ = selfCPU()
	s.machine, s.machineOK = readMachine()
	return s
}

// sleepUntil waits until clock time t or ctx ends; it reports whether t was reached.
func (r *runner) sleepUntil(ctx context.Context, t int64) bool {
	d := time.Duration(t - r.clk.now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runLoad drives cfg.Calls calls against the server and measures them. ctx ending (Ctrl-C)
// closes the window early (or skips it during ramp-up); the sessions are destroyed either way.
func runLoad(ctx context.Context, cfg loadConfig) (*result, error) {
	if cfg.Calls < 1 {
		return nil, fmt.Errorf("-calls %d: need at least 1", cfg.Calls)
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("-duration %v: must be positive", cfg.Duration)
	}
	codec.QuietFFmpeg(false)
	r := &runner{cfg: cfg, clk: &clock{base: time.Now()}, win: newWindow(), errors: map[string]int{}, events: map[string]int64{}}
	res := &result{
		Date:          time.Now().UTC().Format(time.RFC3339),
		Server:        cfg.URL,
		Calls:         cfg.Calls,
		CodecA:        cfg.CodecA.Name(),
		CodecB:        cfg.CodecB.Name(),
		Bidirectional: cfg.Bidirectional,
		Media:         cfg.Media,
		RampS:         cfg.Ramp.Seconds(),
		SettleS:       cfg.Settle.Seconds(),
		DurationS:     cfg.Duration.Seconds(),
		LoadAvgStart:  loadAvg(),
		Cores:         runtime.NumCPU(),
	}
	var err error
	var wav *wavAudio
	if r.legA.payloads, wav, err = encodeFile(cfg.Media, cfg.CodecA); err != nil {
		return nil, err
	}
	if r.legB.payloads, _, err = encodeFile(cfg.Media, cfg.CodecB); err != nil {
		return nil, err
	}
	r.legA.codec, r.legB.codec = cfg.CodecA, cfg.CodecB
	res.MediaSeconds = float64(len(wav.Samples)) / float64(wav.Rate)
	res.MediaRate = wav.Rate
	res.FramesA, res.FramesB = len(r.legA.payloads), len(r.legB.payloads)
	if cfg.WebRTCA {
		res.CodecA += " (WebRTC)"
	}

	r.pacer = newPacer(r.clk, r.win)
	go r.pacer.run()

	// Ramp: call i starts its setup at i × ramp / calls.
	calls := make([]*call, cfg.Calls)
	okCalls := make([]bool, cfg.Calls)
	var wg sync.WaitGroup
	r.progress("setting up %d calls (%s ↔ %s) over %v", cfg.Calls, cfg.CodecA, cfg.CodecB, cfg.Ramp)
	setupCtx, cancelSetup := context.WithCancel(ctx)
	for i := range calls {
		calls[i] = &call{i: i}
		startAt := int64(cfg.Ramp) * int64(i) / int64(cfg.Calls)
		if !r.sleepUntil(setupCtx, startAt) {
			calls = calls[:i]
			break
		}
		wg.Add(1)
		go func(c *call) {
			defer wg.Done()
			if step, err := r.setup(setupCtx, c); err != nil {
				r.countError(errorKey(step, err))
				return
			}
			okCalls[c.i] = true
		}(calls[i])
	}
	wg.Wait()
	cancelSetup()
	for i := range calls {
		if okCalls[i] {
			res.CallsUp++
		}
	}
	res.CallsFailed = len(calls) - res.CallsUp
	res.CallsNotStarted = cfg.Calls - len(calls)
	r.progress("%d of %d calls up", res.CallsUp, cfg.Calls)

	var start, end cpuSample
	measured := false
	if res.CallsUp > 0 && ctx.Err() == nil {
		// Window: settle after the last setup (and not before the ramp is over).
		w0 := max(r.clk.now(), int64(cfg.Ramp)) + int64(cfg.Settle)
		r.win.w1.Store(w0 + int64(cfg.Duration))
		r.win.w0.Store(w0)
		if r.sleepUntil(ctx, w0) {
			start = r.sample()
			r.progress("measuring for %v", cfg.Duration)
			if !r.sleepUntil(ctx, w0+int64(cfg.Duration)) {
				r.win.w1.Store(r.clk.now())
				res.Interrupted = true
			}
			end = r.sample()
			measured = true
			r.sleepUntil(ctx, end.at+int64(cfg.Grace))
		} else {
			res.Interrupted = true
		}
	} else if ctx.Err() != nil {
		res.Interrupted = true
	}
	r.pacer.close()
	res.LoadAvgEnd = loadAvg()
	if cfg.ServerCPU != nil && cfg.ServerCPU.rss != nil {
		if rss, err := cfg.ServerCPU.rss(); err == nil {
			res.ServerRSSBytes = rss
		}
	}

	// Teardown: destroy every session, in parallel, each bounded.
	r.progress("tearing down")
	for _, c := range calls {
		wg.Add(1)
		go func(c *call) {
			defer wg.Done()
			if err := c.teardown(); err != nil {
				r.countError(errorKey("session.destroy", err))
			}
		}(c)
	}
	wg.Wait()

	res.Errors = r.errors
	res.Events = r.events
	if measured {
		r.summarize(res, calls, okCalls, start, end)
	}
	if res.CallsUp == 0 && !res.Interrupted {
		return res, errNoCalls
	}
	return res, nil
}

// summarize fills the measured figures from the finished streams and receivers.
func (r *runner) summarize(res *result, calls []*call, ok []bool, start, end cpuSample) {
	cfg := r.cfg
	window := time.Duration(end.at - start.at)
	res.WindowS = window.Seconds()

	names := [2][2]string{{"A→B", cfg.CodecA.Name() + "→" + cfg.CodecB.Name()}, {"B→A", cfg.CodecB.Name() + "→" + cfg.CodecA.Name()}}
	var forwarded int64
	for d := 0; d < 2; d++ {
		dir := direction{Name: names[d][0], Path: names[d][1], Route: routeName(cfg)}
		lat := newHistogram()
		for _, c := range calls {
			if !ok[c.i] {
				continue
			}
			rc := c.recvs[d]
			forwarded += rc.winArrivals
			dir.RTCP += rc.rtcp
			dir.Invalid += rc.invalid
			if d == 1 && !cfg.Bidirectional {
				dir.Unexpected += rc.winArrivals
				continue
			}
			s := c.streams[d]
			dir.Sent += s.winCount
			dir.SendErrors += s.sendErrs
			if s.winFirst >= 0 {
				dir.Received += rc.got.countRange(s.winFirst, s.winFirst+s.winCount)
			}
			dir.Duplicates += rc.dups
			dir.Unmatched += rc.unmatched
			dir.Misordered += rc.early
			dir.PairingErrors += rc.negative
			lat.merge(rc.lat)
		}
		if d == 1 && !cfg.Bidirectional {
			dir.Route = "none (-bidirectional=false: B only primes its leg)"
			res.Directions = append(res.Directions, dir)
			continue
		}
		dir.Lost = dir.Sent - dir.Received
		if dir.Sent > 0 {
			dir.LossPct = 100 * float64(dir.Lost) / float64(dir.Sent)
		}
		dir.Latency = latencyOf(lat)
		res.Directions = append(res.Directions, dir)
	}
	res.ForwardedInWindow = forwarded

	if cfg.ServerCPU != nil {
		sc := &serverCPU{Source: cfg.ServerCPU.Label, ResolutionMs: float64(cfg.ServerCPU.Resolution) / 1e6, InProcess: cfg.InProcess}
		if start.serverErr != nil || end.serverErr != nil {
			sc.Error = fmt.Sprint(firstErr(start.serverErr, end.serverErr))
		} else {
			cpu := end.server - start.server
			sc.Seconds = cpu.Seconds()
			sc.CorePct = 100 * cpu.Seconds() / window.Seconds()
			if forwarded > 0 {
				sc.NsPerPacket = float64(cpu.Nanoseconds()) / float64(forwarded)
			}
			if res.CallsUp > 0 {
				sc.CorePctPerCall = sc.CorePct / float64(res.CallsUp)
			}
		}
		res.ServerCPU = sc
	}
	self := end.self - start.self
	res.ToolCPU = &toolCPU{Seconds: self.Seconds(), CorePct: 100 * self.Seconds() / window.Seconds(), IncludesServer: cfg.InProcess}
	if start.machineOK && end.machineOK && end.machine.Total > start.machine.Total {
		total := float64(end.machine.Total - start.machine.Total)
		busy := total - float64(end.machine.Idle-start.machine.Idle)
		res.MachineBusyPct = 100 * busy / total * float64(res.Cores) // % of one core, like top
	}
	p := r.pacer
	res.Pacing = pacing{
		Packets:        p.sentInWin,
		LateOver2ms:    p.lateOver2,
		LateOver20ms:   p.lateOver20,
		LatenessP99Ms:  float64(p.lateness.percentile(99)) / 1000,
		LatenessMaxMs:  float64(max(p.lateness.max, 0)) / 1000,
		SendErrors:     p.sendErrsWin,
		StreamsStarted: countStreams(calls, ok, cfg.Bidirectional),
	}
}

func countStreams(calls []*call, ok []bool, bidi bool) int {
	n := 0
	for _, c := range calls {
		if ok[c.i] {
			n++
			if bidi {
				n++
			}
		}
	}
	return n
}

func routeName(cfg loadConfig) string {
	if cfg.CodecA == cfg.CodecB {
		return "passthrough (1 packet out per packet in)"
	}
	return "transcode, 20 ms frames (1 packet out per packet in)"
}

func latencyOf(h *histogram) latency {
	if h.n == 0 {
		return latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		Samples: h.n,
		P50Ms:   ms(h.percentile(50)),
		P95Ms:   ms(h.percentile(95)),
		P99Ms:   ms(h.percentile(99)),
		MaxMs:   ms(h.max),
		MeanMs:  h.mean() / 1000,
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// sortedKeys returns m's keys by descending count, then name.
func sortedKeys[V int | int64](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

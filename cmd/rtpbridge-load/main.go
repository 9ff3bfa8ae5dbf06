// Command rtpbridge-load drives a running rtpbridge with many concurrent two-party calls and
// reports what it cost and how the media fared: packets sent and received per direction (loss),
// added one-way latency percentiles, the server's CPU time over the measurement window (from
// /proc/PID/stat), CPU per forwarded packet, and the tool's own CPU so interference can be
// judged.
//
// Each call is one WebSocket connection (PROTOCOL.md §2), session.create, and two plain RTP
// legs created with endpoint.create_from_offer by two UDP peer sockets on 127.0.0.1, offering
// codec A and codec B. The peers send a speech sample (encoded once at start-up with pkg/codec)
// in 20 ms packets on the real clock, one shared pacer for all calls; the far peer counts and
// timestamps what arrives. Setup (ramp) and teardown are outside the window.
//
//	rtpbridge-load -spawn bin/rtpbridge -calls 50 -duration 20s
//	rtpbridge-load -server ws://127.0.0.1:9100/ -pid $(pidof rtpbridge) -codec-b opus -json
//	rtpbridge-load -spawn bin/rtpbridge -idle -calls 3000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtpbridge-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		server   = fs.String("server", "ws://127.0.0.1:9100/", "rtpbridge WebSocket URL")
		calls    = fs.Int("calls", 50, "concurrent two-party calls")
		duration = fs.Duration("duration", 20*time.Second, "measurement window")
		ramp     = fs.Duration("ramp", 5*time.Second, "call setups are spread over this time")
		settle   = fs.Duration("settle", time.Second, "wait after the last setup before measuring")
		grace    = fs.Duration("grace", 500*time.Millisecond, "wait after the window for packets in flight")
		codecA   = fs.String("codec-a", "PCMU", "codec of leg A: PCMU, PCMA, G722 or opus")
		codecB   = fs.String("codec-b", "PCMU", "codec of leg B (another codec than A makes the server transcode)")
		media    = fs.String("media", "media/speech-16k.wav", "16-bit PCM WAV file the peers send (looped)")
		pid      = fs.Int("pid", 0, "process id of the server, to read its CPU time from /proc/PID/stat")
		spawn    = fs.String("spawn", "", "start this rtpbridge binary on a free 127.0.0.1 port and measure it (instead of -server/-pid)")
		spawnCfg = fs.String("spawn-config", "", "with -spawn: TOML lines added to the spawned server's configuration, e.g. 'inband_dtmf = \"off\"'")
		bidi     = fs.Bool("bidirectional", true, "send both ways (B→A too), like a real call")
		asJSON   = fs.Bool("json", false, "print the summary as JSON")
		verbose  = fs.Bool("v", false, "show progress and the spawned server's log on stderr")
		cpuProf  = fs.String("cpuprofile", "", "write this tool's own CPU profile to the file")
		wsAudio  = fs.Bool("wsaudio", false, "instead of RTP calls: -calls voice bots on WebSocket audio endpoints, each with a PCMU phone in its session, audio both ways; reports server CPU per call")
		wsRate   = fs.Int("ws-rate", 16000, "with -wsaudio: the bots' sample rate (8000, 16000 or 48000)")
		webrtcA  = fs.Bool("webrtc-a", false, "leg A is a WebRTC client (pion in this process: ICE, DTLS-SRTP, like a browser) speaking -codec-a; leg B stays a plain RTP phone")
		record   = fs.String("record", "", "record every call's whole session: pcap, wav (one channel per party) or ogg; compare server CPU and RSS with a run without")
		recDir   = fs.String("record-dir", "", "with -record and -server: the server's recording_dir (a spawned server's is known)")
		idle     = fs.Bool("idle", false, "instead of calls: open -calls sessions with two RTP legs each and no media, and report the server's RSS, heap and goroutines per endpoint (from its /metrics)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rtpbridge-load [flags]\n\n"+
			"Drives rtpbridge with concurrent two-party calls and reports loss, latency and server CPU.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtpbridge-load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "rtpbridge-load: %v\n", err)
		return 2
	}
	a, okA := codec.Lookup(*codecA)
	b, okB := codec.Lookup(*codecB)
	if !okA || !okB {
		return fail(fmt.Errorf("unknown codec (-codec-a %q, -codec-b %q): use PCMU, PCMA, G722 or opus", *codecA, *codecB))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if *spawn != "" && (explicit["server"] || explicit["pid"]) {
		return fail(errSpawnAndServer)
	}

	var progress io.Writer
	if *verbose {
		progress = stderr
	}

	// First signal: stop measuring and tear down in order. Second: leave at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var srv *spawned
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		fmt.Fprintln(stderr, "rtpbridge-load: interrupted: closing the window and destroying the sessions (again to quit at once)")
		cancel()
		<-sigs
		if srv != nil {
			srv.kill()
		}
		os.Exit(130)
	}()

	cfg := loadConfig{
		URL: *server, Calls: *calls, Duration: *duration, Ramp: *ramp, Settle: *settle, Grace: *grace,
		CodecA: a, CodecB: b, Media: *media, Bidirectional: *bidi, Progress: progress, WebRTCA: *webrtcA,
		Record: *record, RecordDir: *recDir,
	}
	if err := checkRecord(cfg.Record, cfg.RecordDir, *spawn != ""); err != nil {
		return fail(err)
	}
	serverPID := *pid
	if *spawn != "" {
		var logTo io.Writer
		if *verbose {
			logTo = stderr
		}
		var err error
		sized := *calls
		if *wsAudio {
			sized *= 2 // a control and an audio connection per call
		}
		if srv, err = spawnServer(*spawn, sized, *spawnCfg, logTo); err != nil {
			return fail(err)
		}
		cfg.URL = "ws://" + srv.addr + "/"
		if cfg.RecordDir == "" {
			cfg.RecordDir = filepath.Join(srv.dir, "recordings")
		}
		serverPID = srv.pid()
		if progress != nil {
			fmt.Fprintf(progress, "rtpbridge-load: spawned %s pid %d on %s\n", *spawn, serverPID, srv.addr)
		}
	}
	if serverPID > 0 {
		probe := procProbe(serverPID)
		if _, err := probe.read(); err != nil {
			fmt.Fprintf(stderr, "rtpbridge-load: cannot read the server's CPU time (%v); continuing without it\n", err)
		} else {
			cfg.ServerCPU = probe
		}
	}

	// finish stops a spawned server and prints res as JSON or as text.
	finish := func(res any, text func(io.Writer)) {
		if srv != nil {
			if serr := srv.stop(15 * time.Second); serr != nil {
				fmt.Fprintf(stderr, "rtpbridge-load: spawned server: %v\n", serr)
			}
		}
		if res == nil {
			return
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(res)
		} else {
			text(stdout)
		}
	}

	if *wsAudio {
		res, err := runWSAudio(ctx, wsAudioConfig{URL: cfg.URL, Calls: *calls, Rate: *wsRate, Duration: *duration,
			Ramp: *ramp, Settle: *settle, Progress: progress, ServerCPU: cfg.ServerCPU})
		if res != nil {
			finish(res, func(w io.Writer) { writeWSAudio(w, res) })
		} else {
			finish(nil, nil)
		}
		if err != nil {
			return fail(err)
		}
		return 0
	}

	if *idle {
		res, err := runIdle(ctx, cfg.URL, *calls, progress)
		if err != nil {
			finish(nil, nil)
			return fail(err)
		}
		finish(res, func(w io.Writer) { writeIdle(w, res) })
		return 0
	}

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	res, err := runLoad(ctx, cfg)
	if res != nil {
		res.ServerPID = serverPID
		res.Spawned = *spawn
		finish(res, func(w io.Writer) { writeText(w, res) })
	} else {
		finish(nil, nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rtpbridge-load: %v\n", err)
		if res != nil && len(res.Errors) > 0 {
			fmt.Fprintf(stderr, "rtpbridge-load: errors: %s\n", strings.Join(sortedKeys(res.Errors), "; "))
		}
		return 1
	}
	if res != nil && res.Interrupted {
		return 130
	}
	return 0
}

// Package server assembles rtpbridge from its parts (configuration, metrics, session manager,
// control plane, listeners) and owns its lifecycle: serving, graceful drain (PROTOCOL.md §27 as
// amended by D21) and shutdown. cmd/rtpbridge and the end-to-end tests both start it this way.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/control"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint/webrtc"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/playback"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/session"
	"github.com/rtpbridge/rtpbridge/pkg/wsaudio"
)

// Tuning adjusts internals that the configuration file does not expose. Tests use it to shorten
// bounds and to stall sessions on purpose; production leaves it zero.
type Tuning struct {
	// CommandTimeout replaces the 5 s command bound when > 0.
	CommandTimeout time.Duration
	// BeforeCommand runs on a session loop before each command.
	BeforeCommand func(method string)
	// HTTP replaces the control listener's HTTP deadlines field by field where > 0.
	HTTP HTTPTimeouts
	// RecordingFile, when set, replaces each new recording's file with the one it returns: a
	// pipe nobody reads is a disk that never finishes a write, /dev/full one that is full.
	RecordingFile func(created *os.File) *os.File
	// WSAudio shortens the audio socket timers (connect timeout, ping, pong and write waits)
	// where > 0; its BufferMs and MaxMessageBytes are ignored (configuration sets them).
	WSAudio wsaudio.Options
}

// HTTPTimeouts bound every wait of the control listener's HTTP server, so that no connection
// can be held without sending (a WebSocket connection is free of them once upgraded: net/http
// clears its deadlines when it hands the connection over, and melody/gorilla keep their own).
type HTTPTimeouts struct {
	// ReadHeader bounds the wait for a request line and headers, idle time before the first
	// byte included (5 s, the classification limit of §2.1).
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included (10 s). Our routes ignore bodies, but
	// net/http drains up to 256 KiB of one after the answer.
	Read time.Duration
	// Write bounds writing a response, from the end of the request headers (30 s).
	Write time.Duration
	// Idle bounds the wait for a further request on a kept-alive connection (60 s). Every
	// answer closes its connection, so this is only a backstop.
	Idle time.Duration
}

// DefaultHTTPTimeouts are the deadlines production uses.
var DefaultHTTPTimeouts = HTTPTimeouts{
	ReadHeader: 5 * time.Second,
	Read:       10 * time.Second,
	Write:      30 * time.Second,
	Idle:       60 * time.Second,
}

func (t HTTPTimeouts) orDefault() HTTPTimeouts {
	pick := func(v, d time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return d
	}
	d := DefaultHTTPTimeouts
	return HTTPTimeouts{
		ReadHeader: pick(t.ReadHeader, d.ReadHeader),
		Read:       pick(t.Read, d.Read),
		Write:      pick(t.Write, d.Write),
		Idle:       pick(t.Idle, d.Idle),
	}
}

// Server is one running rtpbridge.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	mgr     *session.Manager
	ctrl    *control.Server

	poller    *mediaio.Poller
	playback  *playback.Service
	listeners []net.Listener
	timeouts  HTTPTimeouts
	https     []*http.Server
	serveErr  chan error
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a server and binds its listeners; nothing is served until Start. It first checks
// that media_ip can be bound and creates cache_dir (see preflight), and fails if either cannot
// be done.
func New(cfg *config.Config, log *slog.Logger, tune Tuning) (*Server, error) {
	if err := preflight(cfg); err != nil {
		return nil, err
	}
	m := metrics.New()
	ports, err := rtpnet.NewPortAllocator(cfg.MediaIP, cfg.RTPPortRange[0], cfg.RTPPortRange[1])
	if err != nil {
		return nil, fmt.Errorf("rtp_port_range: %w", err)
	}
	var webrtcRange *[2]int
	if cfg.WebRTCPortRange != [2]int{} {
		webrtcRange = &cfg.WebRTCPortRange
	}
	webrtcPorts, err := webrtc.NewPorts(cfg.MediaIP, webrtcRange, cfg.RTPPortRange)
	if err != nil {
		return nil, fmt.Errorf("webrtc_port_range: %w", err)
	}
	audioOpts := tune.WSAudio
	audioOpts.BufferMs, audioOpts.MaxMessageBytes = cfg.WSAudioBufferMs, int64(cfg.WSMaxMessageSizeKB)*1024
	audio := wsaudio.NewHub(audioOpts, log)
	sources, err := rtpnet.ParseSourcePolicy(cfg.RTPSourceNetworks)
	if err != nil {
		return nil, fmt.Errorf("rtp_source_networks: %w", err)
	}
	downloadNets, err := config.ParseDownloadNetworks(cfg.FileDownloadNetworks)
	if err != nil {
		return nil, fmt.Errorf("file_download_networks: %w", err)
	}
	play, err := playback.New(playback.Config{
		MediaDir:               cfg.MediaDir,
		CacheDir:               cfg.CacheDir,
		CacheCleanupInterval:   secs(cfg.CacheCleanupIntervalSecs),
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		MaxFileDownloadBytes:   cfg.MaxFileDownloadBytes,
		MaxCacheEntries:        cfg.MaxCacheEntries,
		MaxCacheBytes:          cfg.MaxCacheBytes,
		DownloadOrigins:        cfg.FileDownloadOrigins,
		DownloadNetworks:       downloadNets,
		Log:                    log,
	})
	if err != nil {
		return nil, err
	}
	poller, err := mediaio.New(0, log)
	if err != nil {
		play.Close()
		return nil, fmt.Errorf("media workers: %w", err)
	}
	mgr := session.NewManager(session.Options{
		MaxSessions:       cfg.MaxSessions,
		DisconnectTimeout: secs(cfg.DisconnectTimeoutSecs),
		IdleTimeout:       secs(cfg.SessionIdleTimeoutSecs),
		EmptyTimeout:      secs(cfg.EmptySessionTimeoutSecs),
		CommandTimeout:    tune.CommandTimeout,
		BeforeCommand:     tune.BeforeCommand,
		WebRTCPorts:       webrtcPorts,
		WSAudio:           audio,
		Playback:          play,
		InbandDTMF:        cfg.InbandDTMF,
		Recording: session.RecordingOptions{
			Dir:           recording.NewDir(cfg.RecordingDir),
			MaxPerSession: cfg.MaxRecordingsPerSession,
			QueueSize:     cfg.RecordingChannelSize,
			FlushTimeout:  secs(cfg.RecordingFlushTimeoutSecs),
			WrapFile:      tune.RecordingFile,
		},
		Media: session.MediaOptions{
			Ports:              ports,
			MediaIP:            cfg.MediaIP,
			RTPPortRange:       cfg.RTPPortRange,
			MaxEndpoints:       cfg.MaxEndpointsPerSession,
			MaxSDPBytes:        cfg.MaxSDPSizeKB * 1024,
			MediaTimeout:       secs(cfg.MediaTimeoutSecs),
			TranscodeCacheSize: cfg.TranscodeCacheSize,
			OpusComplexity:     cfg.OpusComplexity,
			Sources:            sources,
			Poller:             poller,
		},
	}, log, m)
	ctrl := control.New(control.Options{
		MaxMessageBytes:   int64(cfg.WSMaxMessageSizeKB) * 1024,
		PingInterval:      secs(cfg.WSPingIntervalSecs),
		EventQueueSize:    cfg.EventChannelSize,
		CriticalQueueSize: cfg.CriticalEventChannelSize,
		RecordingsHandler: control.NewRecordingsAPI(recording.NewDir(cfg.RecordingDir), cfg.MaxRecordingDownloadBytes, log),
		AudioHandler:      audio,
	}, mgr, m, log)

	s := &Server{cfg: cfg, log: log, metrics: m, mgr: mgr, ctrl: ctrl, poller: poller, playback: play, timeouts: tune.HTTP.orDefault(), serveErr: make(chan error, len(cfg.Listen))}
	for _, addr := range cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			mgr.Close()
			poller.Close()
			play.Close()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, control.LimitListener(l, cfg.MaxConnections))
	}
	return s, nil
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// Addrs are the bound listen addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Manager exposes the session manager (tests inspect it).
func (s *Server) Manager() *session.Manager { return s.mgr }

// Metrics exposes the server's collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Start serves every listener in the background. A listener that fails is reported on Err.
func (s *Server) Start() {
	for _, l := range s.listeners {
		hs := &http.Server{
			Handler: s.ctrl,
			// Classification and request headers within 5 s, at most 8 KiB of them (§2.1);
			// every other wait is bounded too (HTTPTimeouts).
			ReadHeaderTimeout: s.timeouts.ReadHeader,
			ReadTimeout:       s.timeouts.Read,
			WriteTimeout:      s.timeouts.Write,
			IdleTimeout:       s.timeouts.Idle,
			MaxHeaderBytes:    8 << 10,
			// Upgraded connections leave the listener's per-source cap (control.LimitListener).
			ConnState: control.ConnState,
			ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		s.https = append(s.https, hs)
		s.wg.Add(1)
		go func(l net.Listener) {
			defer s.wg.Done()
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- fmt.Errorf("serve %s: %w", l.Addr(), err)
			}
		}(l)
		s.log.Info("listening", "addr", l.Addr().String())
	}
}

// Err delivers the first unexpected listener failure.
func (s *Server) Err() <-chan error { return s.serveErr }

// Drain is the graceful shutdown of D21: new sessions are refused and /ready turns 503 while
// the listener keeps serving everything else; it returns once no session is left or ctx ends
// (shutdown_max_wait_secs), whichever is first.
func (s *Server) Drain(ctx context.Context) error {
	s.mgr.StartDrain()
	s.log.Info("draining: waiting for sessions to end", "sessions", s.mgr.Count())
	return s.mgr.WaitEmpty(ctx)
}

// Draining reports whether a drain has started.
func (s *Server) Draining() bool { return s.mgr.Draining() }

// Close stops listening, disconnects clients and ends every remaining session.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mgr.StartDrain()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, hs := range s.https {
			_ = hs.Shutdown(ctx) // hijacked WebSocket connections are closed below
		}
		s.closeListeners()
		_ = s.ctrl.Close()
		s.mgr.Close()
		s.wg.Wait()
		s.poller.Close() // every session, and so every media socket, is gone
		// Every file endpoint is gone with its session: stop the decode workers and downloads.
		s.playback.Close()
	})
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

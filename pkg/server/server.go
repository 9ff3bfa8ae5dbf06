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
	"sync"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/control"
	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/session"
)

// Tuning adjusts internals that the configuration file does not expose. Tests use it to shorten
// bounds and to stall sessions on purpose; production leaves it zero.
type Tuning struct {
	// CommandTimeout replaces the 5 s command bound when > 0.
	CommandTimeout time.Duration
	// BeforeCommand runs on a session loop before each command.
	BeforeCommand func(method string)
}

// Server is one running rtpbridge.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	mgr     *session.Manager
	ctrl    *control.Server

	listeners []net.Listener
	https     []*http.Server
	serveErr  chan error
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a server and binds its listeners; nothing is served until Start.
func New(cfg *config.Config, log *slog.Logger, tune Tuning) (*Server, error) {
	m := metrics.New()
	ports, err := rtpnet.NewPortAllocator(cfg.MediaIP, cfg.RTPPortRange[0], cfg.RTPPortRange[1])
	if err != nil {
		return nil, fmt.Errorf("rtp_port_range: %w", err)
	}
	mgr := session.NewManager(session.Options{
		MaxSessions:       cfg.MaxSessions,
		DisconnectTimeout: secs(cfg.DisconnectTimeoutSecs),
		IdleTimeout:       secs(cfg.SessionIdleTimeoutSecs),
		EmptyTimeout:      secs(cfg.EmptySessionTimeoutSecs),
		CommandTimeout:    tune.CommandTimeout,
		BeforeCommand:     tune.BeforeCommand,
		Media: session.MediaOptions{
			Ports:              ports,
			MediaIP:            cfg.MediaIP,
			RTPPortRange:       cfg.RTPPortRange,
			MaxEndpoints:       cfg.MaxEndpointsPerSession,
			MaxSDPBytes:        cfg.MaxSDPSizeKB * 1024,
			MediaTimeout:       secs(cfg.MediaTimeoutSecs),
			TranscodeCacheSize: cfg.TranscodeCacheSize,
			OpusComplexity:     cfg.OpusComplexity,
		},
	}, log, m)
	ctrl := control.New(control.Options{
		MaxMessageBytes:   int64(cfg.WSMaxMessageSizeKB) * 1024,
		PingInterval:      secs(cfg.WSPingIntervalSecs),
		EventQueueSize:    cfg.EventChannelSize,
		CriticalQueueSize: cfg.CriticalEventChannelSize,
	}, mgr, m, log)

	s := &Server{cfg: cfg, log: log, metrics: m, mgr: mgr, ctrl: ctrl, serveErr: make(chan error, len(cfg.Listen))}
	for _, addr := range cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
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
			// Classification and request headers within 5 s, at most 8 KiB of them (§2.1).
			ReadHeaderTimeout: 5 * time.Second,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
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
	})
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

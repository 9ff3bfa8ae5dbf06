// Command rtpbridge is the media bridge server: it reads its configuration from flags and an
// optional TOML file, serves the WebSocket control protocol and HTTP API, and drains gracefully
// on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "pcap2wav" {
		return pcap2wav(args[1:], os.Stdout, os.Stderr)
	}
	cfg, warnings, err := config.Load(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rtpbridge: %v\n", err)
		return 2
	}
	level, err := config.ParseLogLevel(cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rtpbridge: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	codec.QuietFFmpeg(level <= slog.LevelDebug)
	for _, w := range warnings {
		log.Warn(w)
	}

	srv, err := server.New(cfg, log, server.Tuning{})
	if err != nil {
		// One line per problem (media_ip not bindable, cache_dir not creatable, a listener).
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			log.Error("startup failed", "err", e)
		}
		return 1
	}
	srv.Start()
	log.Info("rtpbridge started", "media_ip", cfg.MediaIP.String(), "rtp_port_range", cfg.RTPPortRange)

	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	drained := make(chan error, 1)
	signals := 0
	for {
		select {
		case err := <-srv.Err():
			log.Error("control server failed", "err", err)
			srv.Close()
			return 1
		case sig := <-sigs:
			signals++
			switch signals {
			case 1:
				wait := time.Duration(cfg.ShutdownMaxWaitSecs) * time.Second
				log.Info("shutdown requested: draining", "signal", sig.String(), "max_wait", wait)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), wait)
					defer cancel()
					drained <- srv.Drain(ctx)
				}()
			case 2:
				log.Warn("shutdown already in progress; send the signal once more to exit at once", "signal", sig.String())
			default:
				log.Error("third signal: exiting immediately", "signal", sig.String())
				return 1
			}
		case err := <-drained:
			if err != nil {
				log.Warn("drain deadline reached; dropping remaining sessions", "sessions", srv.Manager().Count())
			} else {
				log.Info("all sessions ended")
			}
			srv.Close()
			log.Info("rtpbridge stopped")
			return 0
		}
	}
}

package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// TestNewRefusesUnbindableMediaIP: with a media_ip the host does not have, no media socket can
// ever be opened, so New fails (before any listener is bound) instead of serving a server
// that would report ready and fail every endpoint.
func TestNewRefusesUnbindableMediaIP(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1") // TEST-NET-1
	if c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))); err == nil {
		c.Close()
		t.Fatalf("this host owns %s (TEST-NET-1): the test needs an address no interface has", ip)
	}
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.RecordingDir = t.TempDir()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	cfg.MediaIP = ip
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Tuning{})
	if err == nil {
		srv.Close()
		t.Fatal("New accepted an unbindable media_ip")
	}
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "media_ip" {
		t.Fatalf("want a media_ip KeyError, got %v", err)
	}
	for _, want := range []string{"192.0.2.1", "host networking", "container's own address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// TestNewCreatesCacheDir: cache_dir is created at start-up (PROTOCOL.md §18).
func TestNewCreatesCacheDir(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.RecordingDir = t.TempDir()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if fi, err := os.Stat(cfg.CacheDir); err != nil || !fi.IsDir() {
		t.Fatalf("cache_dir not created: %v", err)
	}
}

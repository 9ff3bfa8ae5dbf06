package server

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// preflight runs the start-up checks that need the running system rather than the
// configuration alone, before anything is served, so a server that could not open a single
// media socket never reports itself ready: media_ip must be bindable and cache_dir is created
// (PROTOCOL.md §18). Every failure is reported at once.
func preflight(cfg *config.Config) error {
	return errors.Join(checkMediaIP(cfg.MediaIP), cfg.CreateCacheDir())
}

// checkMediaIP binds a UDP socket on media_ip (an OS-chosen port) exactly as media sockets are
// bound, and closes it at once. When the probe fails every endpoint would fail later with the
// same error; the typical cause is a container on a bridge network given the host's address,
// which the container's network namespace does not have.
func checkMediaIP(ip netip.Addr) error {
	conn, err := rtpnet.ListenUDP(netip.AddrPortFrom(ip, 0))
	if err != nil {
		return &config.KeyError{
			Key:   "media_ip",
			Value: strconv.Quote(ip.String()),
			Rule:  "cannot be bound, so no media socket could be opened",
			Err: fmt.Errorf("%w; media sockets bind media_ip and SDP advertises it, so it must be an address "+
				"of an interface in rtpbridge's own network namespace: in a container on a bridge network "+
				"that is the container's own address (not the host's); to use the host's address run with "+
				"host networking (docker run --network host, compose network_mode: host); "+
				"see deploy/README.md, \"Media networking\"", err),
		}
	}
	return conn.Close()
}

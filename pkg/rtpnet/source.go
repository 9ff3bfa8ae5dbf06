package rtpnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// SourcePolicy is rtp_source_networks (PROTOCOL.md §0 D24): which sources may
// latch a leg, that is, establish the source its media is accepted from.
// After the latch only that exact address and port is accepted, whatever
// the policy.
//
// The zero value lets any source latch (the default ["*"], NAT-friendly).
type SourcePolicy struct {
	restricted bool           // false: any source may latch
	networks   []netip.Prefix // restricted: these networks; none: only the SDP address
}

// ParseSourcePolicy reads rtp_source_networks: "*" lets any source latch
// (alone, or anywhere in the list); an empty list allows only the address
// in the peer's SDP; otherwise each entry is a CIDR prefix ("10.0.0.0/8",
// "2001:db8::/32") or a single address.
func ParseSourcePolicy(entries []string) (SourcePolicy, error) {
	var p SourcePolicy
	p.restricted = true
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "*" {
			return SourcePolicy{}, nil
		}
		if strings.Contains(e, "/") {
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				return SourcePolicy{}, fmt.Errorf("%q is not \"*\", a CIDR prefix or an IP address: %w", e, err)
			}
			p.networks = append(p.networks, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return SourcePolicy{}, fmt.Errorf("%q is not \"*\", a CIDR prefix or an IP address: %w", e, err)
		}
		if a.Zone() != "" {
			return SourcePolicy{}, fmt.Errorf("%q: an address with a zone cannot be matched", e)
		}
		a = a.Unmap()
		p.networks = append(p.networks, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// MayLatch reports whether a packet from src may latch a leg whose peer
// signalled the address sdp (invalid when unknown).
func (p *SourcePolicy) MayLatch(src, sdp netip.Addr) bool {
	if !p.restricted {
		return true
	}
	if len(p.networks) == 0 {
		return sdp.IsValid() && src == sdp
	}
	for _, n := range p.networks {
		if n.Contains(src) {
			return true
		}
	}
	return false
}

// String renders the policy as rtp_source_networks would be written.
func (p *SourcePolicy) String() string {
	if !p.restricted {
		return `["*"]`
	}
	parts := make([]string, len(p.networks))
	for i, n := range p.networks {
		parts[i] = fmt.Sprintf("%q", n.String())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ParseDownloadNetworks parses file_download_networks (PROTOCOL.md §34): CIDR prefixes, or
// single addresses meaning just that address.
func ParseDownloadNetworks(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// checkOrigins validates file_download_origins entries: scheme://host[:port], nothing else.
func checkOrigins(list []string) error {
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("%q is not an origin", s)
		}
	}
	return nil
}

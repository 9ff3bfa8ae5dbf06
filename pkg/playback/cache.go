package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cache defaults (PROTOCOL.md §28, §34).
const (
	defaultCacheEntries   = 1000
	defaultCacheBytes     = 1 << 30
	defaultConnectTimeout = 10 * time.Second
	maxRedirects          = 5
)

// cache is the URL download cache of §18: one file per key in cache_dir, shared by every
// endpoint playing that URL, downloaded once however many ask at the same time, kept for the
// requests' TTL and cleaned up periodically.
type cache struct {
	cfg    *Config
	dir    string
	client *http.Client
	slots  chan struct{} // max_concurrent_downloads
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	entries  map[string]*cacheEntry
	inflight map[string]*download
}

type cacheEntry struct {
	path    string
	size    int64
	expires time.Time
	users   int
}

// download is one fetch that several requests may wait for. When the last of them gives up
// (its endpoint was removed), the fetch is cancelled.
type download struct {
	done    chan struct{}
	err     error
	waiters int // guarded by cache.mu
	cancel  context.CancelFunc
}

func newCache(cfg *Config) (*cache, error) {
	dir := filepath.Clean(cfg.CacheDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("playback: cache_dir: %w", err)
	}
	// Files left by an earlier run are not in the index: delete them (§18).
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("playback: cache_dir: %w", err)
	}
	for _, de := range des {
		if de.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, de.Name()))
		}
	}
	if cfg.MaxCacheEntries <= 0 {
		cfg.MaxCacheEntries = defaultCacheEntries
	}
	if cfg.MaxCacheBytes <= 0 {
		cfg.MaxCacheBytes = defaultCacheBytes
	}
	if cfg.MaxConcurrentDownloads <= 0 {
		cfg.MaxConcurrentDownloads = 16
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cache{
		cfg: cfg, dir: dir, slots: make(chan struct{}, cfg.MaxConcurrentDownloads), ctx: ctx, cancel: cancel,
		entries: make(map[string]*cacheEntry), inflight: make(map[string]*download),
	}
	c.client = newDownloadClient(cfg)
	if cfg.CacheCleanupInterval > 0 {
		c.wg.Add(1)
		go c.cleaner(cfg.CacheCleanupInterval)
	}
	return c, nil
}

// close stops the cleaner and every download and waits for them.
func (c *cache) close() {
	c.cancel()
	c.wg.Wait()
	c.client.CloseIdleConnections()
}

// get returns the cached file of rawURL (with headers), downloading it if needed, and a
// release function the caller calls when it no longer plays the file. Simultaneous requests
// for one key share one download; each request sets the entry's expiry to now + ttl.
func (c *cache) get(ctx context.Context, rawURL string, headers map[string]string, timeout, ttl time.Duration) (string, func(), error) {
	key := URLKey(rawURL, headers)
	for {
		c.mu.Lock()
		if e := c.entries[key]; e != nil {
			e.users++
			e.expires = time.Now().Add(ttl)
			c.mu.Unlock()
			return e.path, c.releaser(key, e), nil
		}
		d := c.inflight[key]
		if d == nil {
			dctx, cancel := context.WithTimeout(c.ctx, timeout)
			d = &download{done: make(chan struct{}), cancel: cancel}
			c.inflight[key] = d
			c.wg.Add(1)
			go c.fetch(dctx, key, d, rawURL, headers, ttl)
		}
		d.waiters++
		c.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			c.mu.Lock()
			if d.waiters--; d.waiters == 0 {
				d.cancel() // nobody wants it any more
			}
			c.mu.Unlock()
			return "", nil, ctx.Err()
		}
		if errors.Is(d.err, errDownloadCancelled) && ctx.Err() == nil && c.ctx.Err() == nil {
			continue // joined a download its other requesters had just abandoned: start anew
		}
		if d.err != nil {
			return "", nil, d.err
		}
		// The entry is in the index now, unless the cleaner took it in between: then loop.
	}
}

// releaser gives back one use of e; with a TTL already over (cache_ttl_secs 0, D17) the file
// goes as soon as its last user does.
func (c *cache) releaser(key string, e *cacheEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			e.users--
			if e.users == 0 && !time.Now().Before(e.expires) && c.entries[key] == e {
				c.removeLocked(key, e)
			}
		})
	}
}

func (c *cache) removeLocked(key string, e *cacheEntry) {
	delete(c.entries, key)
	_ = os.Remove(e.path)
}

// fetch downloads rawURL into the cache under key and wakes everyone waiting on d.
func (c *cache) fetch(ctx context.Context, key string, d *download, rawURL string, headers map[string]string, ttl time.Duration) {
	defer c.wg.Done()
	defer d.cancel()
	p, size, err := c.downloadTo(ctx, key, rawURL, headers)
	c.mu.Lock()
	if err == nil {
		c.entries[key] = &cacheEntry{path: p, size: size, expires: time.Now().Add(ttl)}
		c.enforceLimitsLocked()
	}
	delete(c.inflight, key)
	d.err = err
	c.mu.Unlock()
	close(d.done)
}

// downloadTo fetches rawURL into the cache file of key: at most max_concurrent_downloads at a
// time (the wait counts against the deadline), non-2xx refused, at most
// max_file_download_bytes. Error texts carry no part of the URL but its origin.
func (c *cache) downloadTo(ctx context.Context, key, rawURL string, headers map[string]string) (string, int64, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return "", 0, downloadError(ctx.Err())
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", 0, errors.New("download failed: invalid URL")
	}
	if err := checkOrigin(c.cfg.DownloadOrigins, u); err != nil {
		return "", 0, fmt.Errorf("download failed: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", 0, errors.New("download failed: invalid URL")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", 0, downloadError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", 0, fmt.Errorf("download failed: HTTP %s", resp.Status)
	}
	limit := c.cfg.MaxFileDownloadBytes
	if limit > 0 && resp.ContentLength > limit {
		return "", 0, fmt.Errorf("download failed: file is %d bytes, more than max_file_download_bytes (%d)", resp.ContentLength, limit)
	}
	final := filepath.Join(c.dir, key+urlExt(u))
	tmp, err := os.CreateTemp(c.dir, key+".*.part")
	if err != nil {
		return "", 0, fmt.Errorf("download failed: cache_dir: %w", err)
	}
	body := io.Reader(resp.Body)
	if limit > 0 {
		body = io.LimitReader(resp.Body, limit+1)
	}
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		err = downloadError(err)
	case limit > 0 && n > limit:
		err = fmt.Errorf("download failed: file is more than max_file_download_bytes (%d)", limit)
	default:
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", 0, err
	}
	return final, n, nil
}

// errDownloadCancelled ends a download every requester gave up on (or the server's shutdown).
var errDownloadCancelled = errors.New("download failed: cancelled")

// downloadError words a transport error without the URL (net/http's errors quote it whole).
func downloadError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("download failed: timed out (timeout_ms)")
	case errors.Is(err, context.Canceled):
		return errDownloadCancelled
	}
	return fmt.Errorf("download failed: %w", err)
}

// urlExt is the URL path's extension if it is a plain one (FFmpeg recognises raw formats by
// it), else ".bin".
func urlExt(u *url.URL) string {
	ext := strings.ToLower(path.Ext(u.Path))
	if len(ext) < 2 || len(ext) > 8 {
		return ".bin"
	}
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return ".bin"
		}
	}
	return ext
}

// cleaner deletes expired unused entries every interval (§18).
func (c *cache) cleaner(every time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.cleanup(time.Now())
		}
	}
}

func (c *cache) cleanup(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.users == 0 && !now.Before(e.expires) {
			c.removeLocked(k, e)
		}
	}
	c.enforceLimitsLocked()
}

// enforceLimitsLocked deletes unused entries, those expiring soonest first, while the cache
// holds more than max_cache_entries or max_cache_bytes (§34).
func (c *cache) enforceLimitsLocked() {
	var total int64
	for _, e := range c.entries {
		total += e.size
	}
	if len(c.entries) <= c.cfg.MaxCacheEntries && total <= c.cfg.MaxCacheBytes {
		return
	}
	type kv struct {
		k string
		e *cacheEntry
	}
	var unused []kv
	for k, e := range c.entries {
		if e.users == 0 {
			unused = append(unused, kv{k, e})
		}
	}
	sort.Slice(unused, func(i, j int) bool { return unused[i].e.expires.Before(unused[j].e.expires) })
	for _, x := range unused {
		if len(c.entries) <= c.cfg.MaxCacheEntries && total <= c.cfg.MaxCacheBytes {
			return
		}
		total -= x.e.size
		c.removeLocked(x.k, x.e)
	}
}

// stats reports the number of entries and downloads in flight (tests).
func (c *cache) stats() (entries, inflight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), len(c.inflight)
}

// newDownloadClient is the HTTP client of §18 and §34: no proxy, a connect timeout, every
// connection's address checked against the policy at connect time (so what was checked is
// what is connected to), and redirects checked like the first request.
func newDownloadClient(cfg *Config) *http.Client {
	dialer := &net.Dialer{
		Timeout: cfg.ConnectTimeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("destination %s: %w", address, err)
			}
			return checkAddr(cfg.DownloadNetworks, ap.Addr().Unmap())
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: 0, // the request's deadline (timeout_ms) bounds it
		// One connection per download, closed with it: downloads are rare and large, and an
		// idle pool would keep goroutines and descriptors around between them.
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return errors.New("too many redirects")
			}
			prev := via[len(via)-1]
			if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			if err := checkOrigin(cfg.DownloadOrigins, req.URL); err != nil {
				return err
			}
			if origin(req.URL) != origin(via[0].URL) {
				// The caller's headers were meant for the first origin only.
				for k := range via[0].Header {
					req.Header.Del(k)
				}
			}
			return nil
		},
	}
}

// errRefusedAddr is a destination of a special-use network not listed in
// file_download_networks.
var errRefusedAddr = errors.New("destination address is in a private, loopback, link-local or special-use network (not allowed by file_download_networks)")

// checkAddr applies §34's network rule to the address about to be connected to.
func checkAddr(allowed []netip.Prefix, a netip.Addr) error {
	for _, p := range allowed {
		if p.Contains(a) {
			return nil
		}
	}
	if specialAddr(a) {
		return errRefusedAddr
	}
	return nil
}

// specialNets are special-use ranges beyond what netip's predicates cover (RFC 6890 and the
// IANA special-purpose registries).
var specialNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
}

func specialAddr(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range specialNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// origin is scheme://host:port with the scheme's default port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// checkOrigin applies file_download_origins (empty: any origin).
func checkOrigin(origins []string, u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("only http and https URLs are fetched")
	}
	if len(origins) == 0 {
		return nil
	}
	o := origin(u)
	for _, allowed := range origins {
		if au, err := url.Parse(allowed); err == nil && origin(au) == o {
			return nil
		}
	}
	return fmt.Errorf("origin %s is not in file_download_origins", o)
}

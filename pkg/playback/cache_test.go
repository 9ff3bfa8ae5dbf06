package playback

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCache is a cache over a fresh directory that may reach 127.0.0.1 only (the test
// servers'), so the refusal of other loopback addresses can be shown too.
func testCache(t *testing.T, mutate func(*Config)) *cache {
	t.Helper()
	cfg := &Config{
		CacheDir:               t.TempDir(),
		MaxConcurrentDownloads: 4,
		MaxFileDownloadBytes:   1 << 20,
		DownloadNetworks:       []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	if mutate != nil {
		mutate(cfg)
	}
	c, err := newCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// server serves body at any path, counting requests and recording the last request headers.
type server struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	header   http.Header
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.header = r.Header.Clone()
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func bodyOf(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, n)) }
}

func get(t *testing.T, c *cache, url string, headers map[string]string, ttl time.Duration) (string, func(), error) {
	t.Helper()
	return c.get(context.Background(), url, headers, 5*time.Second, ttl)
}

func TestCacheHitAndHeaders(t *testing.T) {
	srv := newServer(t, bodyOf(1000))
	c := testCache(t, nil)
	p, rel, err := get(t, c, srv.URL+"/prompts/hello.WAV?x=1", map[string]string{"Authorization": "Bearer abc", "X-Tenant": "7"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 1000 {
		t.Fatalf("cached file %s: %v, %v", p, fi, err)
	}
	if !strings.HasSuffix(p, ".wav") || filepath.Dir(p) != c.dir {
		t.Errorf("cache file %s, want <cache_dir>/<key>.wav", p)
	}
	if h := srv.header; h.Get("Authorization") != "Bearer abc" || h.Get("X-Tenant") != "7" {
		t.Errorf("request headers %v, want the caller's", h)
	}
	p2, rel2, err := get(t, c, srv.URL+"/prompts/hello.WAV?x=1", map[string]string{"X-Tenant": "7", "Authorization": "Bearer abc"}, time.Minute)
	if err != nil || p2 != p {
		t.Fatalf("second get: %s, %v; want the cached %s", p2, err, p)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests for a cached URL, want 1", n)
	}
	// Other headers are another key.
	if _, rel3, err := get(t, c, srv.URL+"/prompts/hello.WAV?x=1", nil, time.Minute); err != nil {
		t.Fatal(err)
	} else {
		rel3()
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want a second one for different headers", n)
	}
	rel()
	rel2()
}

func TestCacheTTL(t *testing.T) {
	srv := newServer(t, bodyOf(100))
	c := testCache(t, nil)
	p, rel, err := get(t, c, srv.URL+"/a.mp3", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// cache_ttl_secs 0 (D17): kept while used, deleted as soon as the last user goes.
	c.cleanup(time.Now().Add(time.Hour))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("file in use was cleaned up: %v", err)
	}
	rel()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("ttl 0: file still there after its last user: %v", err)
	}
	// A TTL keeps it until a cleanup after expiry.
	p, rel, err = get(t, c, srv.URL+"/a.mp3", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	c.cleanup(time.Now().Add(30 * time.Second))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("unexpired entry cleaned up: %v", err)
	}
	if _, rel, err := get(t, c, srv.URL+"/a.mp3", nil, time.Minute); err != nil {
		t.Fatal(err)
	} else {
		rel()
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (one after the ttl-0 deletion, then a hit)", n)
	}
	c.cleanup(time.Now().Add(2 * time.Minute))
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("expired entry not cleaned up: %v", err)
	}
	if e, _ := c.stats(); e != 0 {
		t.Errorf("%d entries after cleanup", e)
	}
}

func TestCacheSharedDownload(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write(make([]byte, 500))
	})
	c := testCache(t, nil)
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, rel, err := get(t, c, srv.URL+"/shared.ogg", nil, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			paths[i] = p
			rel()
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); srv.requests.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let every request join the download
	close(release)
	wg.Wait()
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests for 8 simultaneous gets, want 1", n)
	}
	for _, p := range paths[1:] {
		if p != paths[0] {
			t.Errorf("paths differ: %v", paths)
		}
	}
}

func TestCacheConcurrencyLimit(t *testing.T) {
	var running, peak atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		running.Add(-1)
		w.Write([]byte("x"))
	})
	c := testCache(t, func(cfg *Config) { cfg.MaxConcurrentDownloads = 2 })
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := get(t, c, fmt.Sprintf("%s/f%d.wav", srv.URL, i), nil, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			rel()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("%d downloads ran at once, want max_concurrent_downloads = 2", p)
	}
}

// TestCacheFailures: HTTP errors, slow and oversized answers and policy refusals are errors
// that name the problem and never the URL's path, query or header values, and leave no entry
// or file behind.
func TestCacheFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/big", bodyOf(2<<20))
	mux.HandleFunc("/bigchunked", func(w http.ResponseWriter, r *http.Request) {
		for range 40 {
			w.Write(make([]byte, 64<<10))
			w.(http.Flusher).Flush()
		}
	})
	var srvURL string
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-other-loopback", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(srvURL, "127.0.0.1", "127.0.0.2", 1)+"/ok", http.StatusFound)
	})
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	srv := newServer(t, mux.ServeHTTP)
	srvURL = srv.URL
	c := testCache(t, nil)
	for _, tc := range []struct{ path, want string }{
		{"/404?token=s3cret", "HTTP 404 Not Found"},
		{"/500?token=s3cret", "HTTP 500 Internal Server Error"},
		{"/slow?token=s3cret", "timed out"},
		{"/big?token=s3cret", "max_file_download_bytes"},
		{"/bigchunked?token=s3cret", "max_file_download_bytes"},
		{"/loop?token=s3cret", "too many redirects"},
		{"/to-other-loopback?token=s3cret", "not allowed by file_download_networks"},
		{"/to-metadata?token=s3cret", "not allowed by file_download_networks"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, _, err := c.get(context.Background(), srv.URL+tc.path, map[string]string{"X-Key": "hdr-secret"}, time.Second, time.Minute)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			for _, leak := range []string{"s3cret", "hdr-secret", strings.SplitN(tc.path, "?", 2)[0]} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}
	if e, in := c.stats(); e != 0 || in != 0 {
		t.Errorf("%d entries, %d downloads after failures", e, in)
	}
	des, _ := os.ReadDir(c.dir)
	if len(des) != 0 {
		t.Errorf("files left in cache_dir: %v", des)
	}
}

// TestDownloadPolicy: without file_download_networks, loopback and other special-use
// destinations are refused at connect time; origins limit where URLs and redirects go;
// headers do not follow a redirect to another origin; https never redirects to http.
func TestDownloadPolicy(t *testing.T) {
	srv := newServer(t, bodyOf(10))
	strict := testCache(t, func(cfg *Config) { cfg.DownloadNetworks = nil })
	if _, _, err := get(t, strict, srv.URL+"/a.wav", nil, time.Minute); err == nil || !strings.Contains(err.Error(), "file_download_networks") {
		t.Errorf("loopback without file_download_networks: %v", err)
	}
	if srv.requests.Load() != 0 {
		t.Error("a refused destination was connected to")
	}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1"} {
		if err := checkAddr(nil, netip.MustParseAddr(a).Unmap()); err == nil {
			t.Errorf("%s allowed", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1::1"} {
		if err := checkAddr(nil, netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}

	// Origins.
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) })
	redirector := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x.wav", http.StatusFound)
	})
	limited := testCache(t, func(cfg *Config) { cfg.DownloadOrigins = []string{redirector.URL} })
	if _, _, err := get(t, limited, srv.URL+"/a.wav", nil, time.Minute); err == nil || !strings.Contains(err.Error(), "file_download_origins") {
		t.Errorf("origin not listed: %v", err)
	}
	if _, _, err := get(t, limited, redirector.URL+"/r.wav", nil, time.Minute); err == nil || !strings.Contains(err.Error(), "file_download_origins") {
		t.Errorf("redirect to an origin not listed: %v", err)
	}

	// Headers are dropped on a redirect to another origin.
	open := testCache(t, nil)
	_, rel, err := get(t, open, redirector.URL+"/r.wav", map[string]string{"Authorization": "Bearer abc"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if h := other.header.Get("Authorization"); h != "" {
		t.Errorf("caller header followed a cross-origin redirect: %q", h)
	}
	if redirector.header.Get("Authorization") != "Bearer abc" {
		t.Error("caller header not sent to the first origin")
	}
}

// TestRedirectRules checks the redirect policy directly (a TLS test server's certificate is
// not one the download client trusts): https → http refused, at most 5 redirects.
func TestRedirectRules(t *testing.T) {
	cl := newDownloadClient(&Config{ConnectTimeout: time.Second})
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := req("https://media.example.com/a.wav")
	if err := cl.CheckRedirect(req("http://media.example.com/a.wav"), []*http.Request{first}); err == nil || !strings.Contains(err.Error(), "https to http") {
		t.Errorf("https → http: %v", err)
	}
	if err := cl.CheckRedirect(req("https://cdn.example.com/a.wav"), []*http.Request{first}); err != nil {
		t.Errorf("https → https: %v", err)
	}
	via := []*http.Request{first}
	for range 5 {
		via = append(via, req("https://media.example.com/b.wav"))
	}
	if err := cl.CheckRedirect(req("https://media.example.com/c.wav"), via); err == nil {
		t.Error("a sixth redirect was followed")
	}
}

package server_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// rawRequest sends one request line exactly as written (no client-side cleaning or escaping)
// and returns the status and body.
func rawRequest(t *testing.T, addr, method, target string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: rtpbridge\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

type recordingList struct {
	Recordings []string `json:"recordings"`
	Total      int      `json:"total"`
	Skip       int      `json:"skip"`
	Limit      int      `json:"limit"`
}

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordingsListing(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	dir := srv.Config.RecordingDir
	var names []string
	for i := 0; i < 150; i++ {
		names = append(names, fmt.Sprintf("call-%03d.pcap", i))
	}
	writeFiles(t, dir, names...)
	writeFiles(t, dir, "sub dir/x.pcap", "sub dir/y.wav", "z.ogg", "notes.txt", "a/b/c/d/e/f/g/h/i/j/k/too-deep.pcap")

	get := func(target string) recordingList {
		t.Helper()
		status, body := rawRequest(t, srv.Addr, "GET", target)
		if status != 200 {
			t.Fatalf("GET %s = %d %s", target, status, body)
		}
		if !strings.Contains(body, "\n  ") {
			t.Fatalf("GET %s: body not pretty-printed: %s", target, body)
		}
		var l recordingList
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := get("/recordings")
	if l.Total != 153 || len(l.Recordings) != 100 || l.Skip != 0 || l.Limit != 100 || l.Recordings[0] != "call-000.pcap" {
		t.Fatalf("default page: total %d, %d entries, skip %d limit %d, first %q", l.Total, len(l.Recordings), l.Skip, l.Limit, l.Recordings[0])
	}
	l = get("/recordings/?skip=140&limit=20")
	want := []string{"call-140.pcap", "call-141.pcap", "call-142.pcap", "call-143.pcap", "call-144.pcap",
		"call-145.pcap", "call-146.pcap", "call-147.pcap", "call-148.pcap", "call-149.pcap", "sub dir/x.pcap", "sub dir/y.wav", "z.ogg"}
	if strings.Join(l.Recordings, ",") != strings.Join(want, ",") || l.Total != 153 || l.Skip != 140 || l.Limit != 20 {
		t.Fatalf("page 140+20: %+v", l)
	}
	l = get("/recordings?startsWith=sub%20dir%2F&limit=abc&skip=-3")
	if strings.Join(l.Recordings, ",") != "sub dir/x.pcap,sub dir/y.wav" || l.Total != 2 || l.Skip != 0 || l.Limit != 100 {
		t.Fatalf("startsWith: %+v", l)
	}
	l = get("/recordings?limit=5000&startsWith=call-00")
	if l.Limit != 1000 || l.Total != 10 {
		t.Fatalf("limit cap: %+v", l)
	}
	l = get("/recordings?skip=1000")
	if l.Recordings == nil || len(l.Recordings) != 0 || l.Total != 153 {
		t.Fatalf("skip past the end: %+v", l)
	}

	for _, tc := range []struct {
		method, target string
		status         int
		body           string
	}{
		{"DELETE", "/recordings", 405, `{"error":"method not allowed"}`},
		{"POST", "/recordings", 405, `{"error":"method not allowed"}`},
		{"PUT", "/recordings/call-001.pcap", 405, `{"error":"method not allowed"}`},
		{"GET", "/recordings/missing.pcap", 404, `{"error":"recording not found"}`},
		{"DELETE", "/recordings/missing.pcap", 404, `{"error":"recording not found"}`},
		{"GET", "/recordings/sub%20dir/x.pcap", 200, "content of sub dir/x.pcap"},
		{"GET", "/recordings/notes.txt", 200, "content of notes.txt"},
		{"DELETE", "/recordings/call-001.pcap", 200, `{"deleted":true}`},
		{"GET", "/recordings/call-001.pcap", 404, `{"error":"recording not found"}`},
	} {
		if status, body := rawRequest(t, srv.Addr, tc.method, tc.target); status != tc.status || body != tc.body {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.target, status, body, tc.status, tc.body)
		}
	}
	resp, err := http.Get("http://" + srv.Addr + "/recordings/z.ogg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "audio/ogg" || resp.Header.Get("Content-Length") != "16" || !resp.Close {
		t.Fatalf("download headers %v", resp.Header)
	}
	resp, err = http.Get("http://" + srv.Addr + "/recordings/call-002.pcap")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/vnd.tcpdump.pcap" {
		t.Fatalf("pcap Content-Type %q", resp.Header.Get("Content-Type"))
	}

	// recording_dir gone: listing 500, file routes 500.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, target, body string }{
		{"GET", "/recordings", `{"error":"failed to read recording directory"}`},
		{"GET", "/recordings/x.pcap", `{"error":"recording directory not accessible"}`},
		{"DELETE", "/recordings/x.pcap", `{"error":"recording directory not accessible"}`},
	} {
		if status, body := rawRequest(t, srv.Addr, tc.method, tc.target); status != 500 || body != tc.body {
			t.Errorf("%s %s without recording_dir = %d %s", tc.method, tc.target, status, body)
		}
	}
}

// TestRecordingsTraversalRefused: 30 ways out of recording_dir, each by GET and DELETE; none
// reads or deletes anything outside it.
func TestRecordingsTraversalRefused(t *testing.T) {
	base := t.TempDir()
	rec := filepath.Join(base, "rec")
	writeFiles(t, base, "secret.pcap", "outside/secret.pcap", "rec/sub/ok.pcap")
	const secret = "content of secret.pcap"
	for link, target := range map[string]string{
		"link-out.pcap":   filepath.Join(base, "secret.pcap"),
		"dirlink":         filepath.Join(base, "outside"),
		"sub/uplink":      "../../outside",
		"link-abs":        "/etc/passwd",
		"proc-self":       "/proc/self/root",
		"sub/rel-up.pcap": "../../secret.pcap",
	} {
		if err := os.Symlink(target, filepath.Join(rec, link)); err != nil {
			t.Fatal(err)
		}
	}
	srv := testserver.Start(t, func(c *config.Config) { c.RecordingDir = rec }, server.Tuning{})

	attempts := []string{
		"/recordings/../secret.pcap",
		"/recordings/%2e%2e/secret.pcap",
		"/recordings/%2E%2E/secret.pcap",
		"/recordings/..%2fsecret.pcap",
		"/recordings/..%2Fsecret.pcap",
		"/recordings/%2e%2e%2fsecret.pcap",
		"/recordings/sub/../../secret.pcap",
		"/recordings/sub/%2e%2e/%2e%2e/secret.pcap",
		"/recordings/.%2e/secret.pcap",
		"/recordings/%2e./secret.pcap",
		"/recordings/./../secret.pcap",
		"/recordings/sub/./../../secret.pcap",
		"/recordings/../../../../../../etc/passwd",
		"/recordings/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/recordings//etc/passwd",
		"/recordings/%2fetc%2fpasswd",
		"/recordings/link-out.pcap",
		"/recordings/dirlink/secret.pcap",
		"/recordings/sub/uplink/secret.pcap",
		"/recordings/link-abs",
		"/recordings/proc-self/etc/passwd",
		"/recordings/sub/rel-up.pcap",
		"/recordings/..\\secret.pcap",
		"/recordings/..%5csecret.pcap",
		"/recordings/%252e%252e/secret.pcap",
		"/recordings/..;/secret.pcap",
		"/recordings/%00../secret.pcap",
		"/recordings/....//secret.pcap",
		"/recordings/..%252f..%252fsecret.pcap",
		"/recordings/%2e%2e/rec/../secret.pcap",
	}
	if len(attempts) != 30 {
		t.Fatalf("%d attempts", len(attempts))
	}
	for _, method := range []string{"GET", "DELETE"} {
		for _, target := range attempts {
			status, body := rawRequest(t, srv.Addr, method, target)
			t.Logf("%s %s → %d", method, target, status)
			// 403 for what exists outside, 404 for what does not exist at all (§24); the Go
			// HTTP server itself answers 400 to a request line it cannot parse.
			if status != 403 && status != 404 && status != 400 {
				t.Errorf("%s %s = %d %q", method, target, status, body)
			}
			if strings.Contains(body, "secret") || strings.Contains(body, "root:") {
				t.Errorf("%s %s leaked %q", method, target, body)
			}
			if status == 403 && body != `{"error":"path outside recording directory"}` {
				t.Errorf("%s %s: 403 body %q", method, target, body)
			}
		}
	}
	for _, p := range []string{filepath.Join(base, "secret.pcap"), filepath.Join(base, "outside", "secret.pcap")} {
		if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "content of") {
			t.Fatalf("%s was touched: %v", p, err)
		}
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal("/etc/passwd is gone")
	}
	// The traversals that name an existing file outside are 403, not 404.
	for _, target := range []string{"/recordings/%2e%2e/secret.pcap", "/recordings/link-out.pcap", "/recordings/dirlink/secret.pcap", "/recordings/link-abs"} {
		if status, _ := rawRequest(t, srv.Addr, "GET", target); status != 403 {
			t.Errorf("GET %s = %d, want 403", target, status)
		}
	}
	// And the listing shows only what is inside, not what links lead to.
	status, body := rawRequest(t, srv.Addr, "GET", "/recordings")
	if status != 200 || strings.Contains(body, "secret") || !strings.Contains(body, "sub/ok.pcap") {
		t.Fatalf("listing %d %s", status, body)
	}
}

// TestRecordingDownloadStreams downloads a 200 MB recording: the bytes arrive intact and the
// server allocates far less than the file's size while sending it.
func TestRecordingDownloadStreams(t *testing.T) {
	const size = 200 << 20
	srv := testserver.Start(t, func(c *config.Config) { c.MaxRecordingDownloadBytes = size }, server.Tuning{})
	path := filepath.Join(srv.Config.RecordingDir, "big.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse, with marks spread through it so a reordered or truncated stream shows.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < size; off += 7 << 20 {
		if _, err := f.WriteAt([]byte(fmt.Sprintf("mark@%d", off)), off); err != nil {
			t.Fatal(err)
		}
	}
	want := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(want, f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Get("http://" + srv.Addr + "/recordings/big.pcap")
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.CopyBuffer(got, resp.Body, make([]byte, 64<<10))
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("download: status %d, %d of %d bytes, content length %d, err %v", resp.StatusCode, n, size, resp.ContentLength, err)
	}
	if string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatal("downloaded bytes differ from the file")
	}
	// Client and server share this process: everything both allocated while 200 MB passed.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("%d MB allocated while streaming a 200 MB file", alloc>>20)
	}

	// One byte over max_recording_download_bytes: 413 with the sizes.
	if err := os.Truncate(path, size+1); err != nil {
		t.Fatal(err)
	}
	status, body := rawRequest(t, srv.Addr, "GET", "/recordings/big.pcap")
	if want := fmt.Sprintf(`{"error":"recording too large (%d bytes, max %d)"}`, size+1, size); status != 413 || body != want {
		t.Fatalf("over the limit: %d %s", status, body)
	}
}

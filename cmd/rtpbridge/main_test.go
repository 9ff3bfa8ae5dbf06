package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The test binary doubles as the rtpbridge binary: with RTPBRIDGE_TEST_MAIN set it runs main's
// logic on the JSON-encoded arguments, so the signal handling is tested in a real process.
func TestMain(m *testing.M) {
	if args := os.Getenv("RTPBRIDGE_TEST_MAIN"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(99)
		}
		os.Exit(run(argv))
	}
	os.Exit(m.Run())
}

type process struct {
	cmd    *exec.Cmd
	addr   string
	dir    string // the temporary directory of start's config, recordings and cache
	stderr *syncBuffer
	exited chan struct{}
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs rtpbridge with a config file holding extra (TOML) plus a free listen address.
func start(t *testing.T, extra string) *process {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen = %q\nrecording_dir = %q\ncache_dir = %q\n%s", addr,
		filepath.Join(dir, "rec"), filepath.Join(dir, "cache"), extra)
	path := filepath.Join(dir, "rtpbridge.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := exec_(t, []string{"-c", path})
	p.addr = addr
	p.dir = dir
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("rtpbridge exited %d at start:\n%s", p.code, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpbridge did not come up:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func exec_(t *testing.T, args []string) *process {
	t.Helper()
	return execAs(t, os.Args[0], nil, args)
}

// execAs runs bin (a copy of this test binary) with args, under the credentials in cred when
// not nil.
func execAs(t *testing.T, bin string, cred *syscall.Credential, args []string) *process {
	t.Helper()
	argv, _ := json.Marshal(args)
	cmd := exec.Command(bin)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Env = append(os.Environ(), "RTPBRIDGE_TEST_MAIN="+string(argv))
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *process) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(within):
		t.Fatalf("rtpbridge still running after %v:\n%s", within, p.stderr)
	}
	return -1
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *process) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	n    int
}

func dial(t *testing.T, addr string) *wsClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// call returns the response's result or error object as raw JSON, skipping events.
func (c *wsClient) call(method string) (result, errObj string) {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("%d", c.n)
	if err := c.conn.WriteJSON(map[string]string{"id": id, "method": method}); err != nil {
		c.t.Fatal(err)
	}
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m struct {
			ID     *string         `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		if m.ID != nil && *m.ID == id {
			return string(m.Result), string(m.Error)
		}
	}
}

func TestSignalDrainEndsWithLastSession(t *testing.T) {
	p := start(t, "shutdown_max_wait_secs = 60\n")
	c := dial(t, p.addr)
	if _, e := c.call("session.create"); e != "" {
		t.Fatalf("session.create: %s", e)
	}
	p.signal(t, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := p.get(t, "/ready"); code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/ready never turned 503")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := p.get(t, "/ready"); body != `{"status":"draining"}` {
		t.Errorf("/ready = %d %s", code, body)
	}
	if code, _ := p.get(t, "/health"); code != 200 {
		t.Errorf("/health while draining = %d", code)
	}
	late := dial(t, p.addr)
	if _, e := late.call("session.create"); !strings.Contains(e, "SHUTTING_DOWN") {
		t.Errorf("session.create while draining: %s", e)
	}
	if _, e := c.call("session.info"); e != "" {
		t.Errorf("existing session stopped working: %s", e)
	}
	select {
	case <-p.exited:
		t.Fatalf("exited while a session was left:\n%s", p.stderr)
	case <-time.After(500 * time.Millisecond):
	}
	if _, e := c.call("session.destroy"); e != "" {
		t.Fatal(e)
	}
	if code := p.waitExit(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after drain:\n%s", code, p.stderr)
	}
}

func TestSignalDrainDeadline(t *testing.T) {
	p := start(t, "shutdown_max_wait_secs = 1\n")
	c := dial(t, p.addr)
	c.call("session.create")
	start := time.Now()
	p.signal(t, syscall.SIGINT)
	if code := p.waitExit(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.stderr)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("exited after %v, before shutdown_max_wait_secs", d)
	}
}

func TestIdleServerExitsAtOnce(t *testing.T) {
	p := start(t, "")
	p.signal(t, syscall.SIGTERM)
	if code := p.waitExit(t, 3*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.stderr)
	}
}

func TestThirdSignalExitsImmediately(t *testing.T) {
	p := start(t, "shutdown_max_wait_secs = 60\n")
	dial(t, p.addr).call("session.create")
	for i := 0; i < 3; i++ {
		p.signal(t, syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
	}
	if code := p.waitExit(t, 3*time.Second); code != 1 {
		t.Fatalf("exit code %d after three signals, want 1:\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "shutdown already in progress") {
		t.Errorf("second signal did not warn:\n%s", p.stderr)
	}
}

func TestInvalidConfigurationStopsStartup(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ toml, want string }{
		{"rtp_port_range = [30001, 39999]\n", "rtp_port_range"},
		{"max_sesions = 5\n", `unknown key "max_sesions"`},
		{"media_timeout_secs = 0\n", "media_timeout_secs"},
		{"listen = [\"127.0.0.1:1\"]\n", "listen"},
	}
	for _, tc := range cases {
		path := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
			t.Fatal(err)
		}
		p := exec_(t, []string{"-c", path})
		if code := p.waitExit(t, 5*time.Second); code == 0 {
			t.Errorf("%q: exit code 0", tc.toml)
		}
		if !strings.Contains(p.stderr.String(), tc.want) {
			t.Errorf("%q: stderr does not name %q:\n%s", tc.toml, tc.want, p.stderr)
		}
	}
	p := exec_(t, []string{"--log-level", "loud"})
	if code := p.waitExit(t, 5*time.Second); code == 0 || !strings.Contains(p.stderr.String(), "loud") {
		t.Errorf("bad --log-level: exit %d, stderr %s", code, p.stderr)
	}
}

func TestListenerBindFailureExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := exec_(t, []string{"-l", l.Addr().String()})
	if code := p.waitExit(t, 5*time.Second); code != 1 {
		t.Fatalf("exit code %d when the listen address is taken:\n%s", code, p.stderr)
	}
}

// writeConfig writes a configuration file with a free listen address and the given directories
// plus extra (TOML) into dir and returns its path and the listen address.
func writeConfig(t *testing.T, dir, recordingDir, cacheDir, extra string) (string, string) {
	t.Helper()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen = %q\nrecording_dir = %q\ncache_dir = %q\n%s", addr, recordingDir, cacheDir, extra)
	path := filepath.Join(dir, "rtpbridge.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, addr
}

// TestUnbindableMediaIPStopsStartup: a media_ip this host does not own (a container given the
// host's address on a bridge network) must stop start-up with a message saying what to do,
// instead of a server that reports ready and then fails every endpoint.
func TestUnbindableMediaIPStopsStartup(t *testing.T) {
	const ip = "192.0.2.1" // TEST-NET-1
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}); err == nil {
		c.Close()
		t.Fatalf("this host owns %s (TEST-NET-1): the test needs an address no interface has", ip)
	}
	dir := t.TempDir()
	path, addr := writeConfig(t, dir, filepath.Join(dir, "rec"), filepath.Join(dir, "cache"), "")
	p := exec_(t, []string{"-c", path, "--media-ip", ip})
	// /ready must never answer while the process refuses to start.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		exited := false
		select {
		case <-p.exited:
			exited = true
		default:
		}
		if resp, err := http.Get("http://" + addr + "/ready"); err == nil {
			resp.Body.Close()
			t.Fatalf("/ready answered %d with an unbindable media_ip", resp.StatusCode)
		}
		if exited {
			break
		}
	}
	if code := p.waitExit(t, 5*time.Second); code == 0 {
		t.Fatalf("exit code 0 with an unbindable media_ip:\n%s", p.stderr)
	}
	out := p.stderr.String()
	for _, want := range []string{"media_ip", ip, "cannot assign requested address", "host networking", "container's own address"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "listening") || strings.Contains(out, "rtpbridge started") {
		t.Errorf("started despite the unbindable media_ip:\n%s", out)
	}
}

// TestCacheDirCreatedAtStartup: cache_dir need not exist, only its parent (PROTOCOL.md §18).
func TestCacheDirCreatedAtStartup(t *testing.T) {
	p := start(t, "")
	fi, err := os.Stat(filepath.Join(p.dir, "cache"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("cache_dir not created at start-up: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		t.Errorf("cache_dir created with mode %04o, want no group write and nothing for others", perm)
	}
}

// unprivileged prepares a run of this test binary that cannot write dirs owned by the test:
// the test's own user when that is not root, else uid/gid 65534 from a copy of the binary in
// base (root ignores permission bits). base and its ancestors are opened up for traversal.
func unprivileged(t *testing.T, base string) (string, *syscall.Credential) {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Args[0], nil
	}
	for d := base; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "rtpbridge.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, &syscall.Credential{Uid: 65534, Gid: 65534}
}

// readOnlyDir makes a directory nobody but root can write into.
func readOnlyDir(t *testing.T, path string) string {
	t.Helper()
	if err := os.Mkdir(path, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(path, 0o755) })
	return path
}

// TestUncreatableCacheDirStopsStartup: a cache_dir that cannot be created (a read-only /tmp, a
// uid without write access to its parent) stops start-up with a message naming the uid and
// the fix.
func TestUncreatableCacheDirStopsStartup(t *testing.T) {
	dir := t.TempDir()
	bin, cred := unprivileged(t, dir)
	cache := filepath.Join(readOnlyDir(t, filepath.Join(dir, "ro")), "cache")
	path, _ := writeConfig(t, dir, filepath.Join(dir, "rec"), cache, "")
	p := execAs(t, bin, cred, []string{"-c", path})
	if code := p.waitExit(t, 5*time.Second); code == 0 {
		t.Fatalf("exit code 0 although cache_dir cannot be created:\n%s", p.stderr)
	}
	out := p.stderr.String()
	for _, want := range []string{"cache_dir", cache, "could not be created", "permission denied",
		fmt.Sprintf("rtpbridge runs as uid %d", uidOf(cred)), "chown", "configure a writable directory"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
}

// TestUnwritableRecordingDirNamesTheFix: the forgotten `chown` of a bind-mounted recordings
// directory must name the directory, the uid rtpbridge runs as, the owner and the fix.
func TestUnwritableRecordingDirNamesTheFix(t *testing.T) {
	dir := t.TempDir()
	bin, cred := unprivileged(t, dir)
	rec := readOnlyDir(t, filepath.Join(dir, "rec"))
	path, _ := writeConfig(t, dir, rec, filepath.Join(dir, "cache"), "")
	p := execAs(t, bin, cred, []string{"-c", path})
	if code := p.waitExit(t, 5*time.Second); code == 0 {
		t.Fatalf("exit code 0 although recording_dir is not writable:\n%s", p.stderr)
	}
	out := p.stderr.String()
	for _, want := range []string{"recording_dir", rec, "must be writable",
		fmt.Sprintf("rtpbridge runs as uid %d", uidOf(cred)), fmt.Sprintf("%s belongs to uid %d", rec, os.Geteuid()),
		"chown", "configure a writable directory"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
}

func uidOf(cred *syscall.Credential) int {
	if cred != nil {
		return int(cred.Uid)
	}
	return os.Getuid()
}

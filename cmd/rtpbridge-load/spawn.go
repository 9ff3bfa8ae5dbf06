package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// spawnPortBase is where the spawned server's rtp_port_range starts: below Linux's ephemeral
// range (32768-60999), where this tool's own peer sockets live.
const spawnPortBase = 20000

// spawned is an rtpbridge this tool started.
type spawned struct {
	cmd    *exec.Cmd
	dir    string
	addr   string // 127.0.0.1:port
	exited chan struct{}
	err    error // from Wait, valid after exited
	log    *tailBuffer
}

// spawnServer starts the rtpbridge binary at path on a free 127.0.0.1 port with a temporary
// configuration sized for calls (2 RTP port pairs per call, plus slack) and waits, at most
// 15 s, for GET /health to answer 200. The server gets its own process group, so a Ctrl-C in
// the terminal reaches only this tool, which then tears down in order.
func spawnServer(path string, calls int, extraConfig string, logTo io.Writer) (*spawned, error) {
	abs, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("-spawn %s: %w", path, err)
	}
	port, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rtpbridge-load-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"recordings", "cache"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	pairs := 2*calls + 64
	end := min(spawnPortBase+2*pairs-1, 65533)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`# written by rtpbridge-load
listen = %q
media_ip = "127.0.0.1"
rtp_port_range = [%d, %d]
max_sessions = %d
max_connections = %d
recording_dir = %q
cache_dir = %q
log_level = "warn"
`, addr, spawnPortBase, end, calls+16, calls+64, filepath.Join(dir, "recordings"), filepath.Join(dir, "cache"))
	conf += extraConfig + "\n"
	confPath := filepath.Join(dir, "rtpbridge.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	s := &spawned{dir: dir, addr: addr, exited: make(chan struct{}), log: &tailBuffer{max: 16 << 10}}
	s.cmd = exec.Command(abs, "-c", confPath)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out io.Writer = s.log
	if logTo != nil {
		out = io.MultiWriter(s.log, logTo)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("-spawn %s: %w", abs, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("-spawn: %s exited at start-up (%v); its output:\n%s", abs, s.err, s.log.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("-spawn: %s did not answer /health on %s within 15 s; its output:\n%s", abs, addr, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pid is the server's process id.
func (s *spawned) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM (a graceful drain, quick once the sessions are gone), waits up to timeout,
// then kills. It removes the temporary directory.
func (s *spawned) stop(timeout time.Duration) error {
	defer os.RemoveAll(s.dir)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(timeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("did not exit within %v of SIGTERM; killed", timeout)
}

// kill ends the server at once (second Ctrl-C).
func (s *spawned) kill() {
	_ = s.cmd.Process.Kill()
	os.RemoveAll(s.dir)
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var errSpawnAndServer = errors.New("-spawn starts its own server: do not combine it with -server or -pid")

package deploy

// Static checks of the deployment files. There is no Docker engine, cluster or systemd to try
// them on in CI, so they must be right by construction: these tests read the files and check
// what would otherwise only fail in production (a SIGKILL cutting a drain short, a probe on
// the wrong route, a config key rtpbridge rejects, a published UDP range that does not match
// rtp_port_range, ...).
//
// Every check is a function from a repository view to a list of problems. TestDeployFiles runs
// them on the real files; TestChecksCatchBreakage runs them on in-memory copies with one
// deliberate mistake each and requires the matching check to report it, so no check can
// silently stop checking.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// minGraceMargin is how much longer than shutdown_max_wait_secs every stop timeout must be:
// after the drain rtpbridge still closes sessions and flushes recordings.
const minGraceMargin = 10

// configKeys are the TOML keys of PROTOCOL.md §26 plus opus_complexity (§29).
var configKeys = []string{
	"listen", "media_ip", "rtp_port_range", "disconnect_timeout_secs", "shutdown_max_wait_secs",
	"media_dir", "recording_dir", "cache_dir", "cache_cleanup_interval_secs",
	"max_concurrent_downloads", "max_sessions", "max_endpoints_per_session",
	"max_recordings_per_session", "recording_flush_timeout_secs", "ws_max_message_size_kb",
	"max_sdp_size_kb", "session_idle_timeout_secs", "empty_session_timeout_secs",
	"media_timeout_secs", "max_connections", "ws_ping_interval_secs", "event_channel_size",
	"critical_event_channel_size", "transcode_cache_size", "max_file_download_bytes",
	"max_recording_download_bytes", "recording_channel_size", "log_level",
	"opus_complexity",
}

// stringKeys are the configKeys whose value is a TOML string; rtp_port_range is an array of
// two integers; every other key is an integer.
var stringKeys = map[string]bool{
	"listen": true, "media_ip": true, "media_dir": true, "recording_dir": true,
	"cache_dir": true, "log_level": true,
}

// metricNames are the samples of PROTOCOL.md §25.
var metricNames = []string{
	"rtpbridge_sessions_total", "rtpbridge_sessions_active", "rtpbridge_endpoints_total",
	"rtpbridge_endpoints_active", "rtpbridge_packets_routed_total",
	"rtpbridge_packets_recorded_total", "rtpbridge_recordings_active",
	"rtpbridge_srtp_errors_total", "rtpbridge_dtmf_events_total",
	"rtpbridge_transcode_errors_total", "rtpbridge_events_dropped_total",
}

// configDefaults are the §26 defaults of the keys the checks compare against.
var configDefaults = map[string]any{
	"listen":                 "0.0.0.0:9100",
	"rtp_port_range":         []any{int64(30000), int64(39999)},
	"shutdown_max_wait_secs": int64(300),
	"ws_ping_interval_secs":  int64(30),
	"recording_dir":          "/var/lib/rtpbridge/recordings",
	"cache_dir":              "/tmp/rtpbridge-cache",
	"media_dir":              "",
}

// allowedDomains may appear in deployment files; any other host name is refused, so that no
// file names a package registry or mirror (apt and Go use what the build environment is
// configured with). Label and annotation prefixes are the usual reason for these.
var allowedDomains = []string{"example.com", "example.org", "example.net", "kubernetes.io", "k8s.io", "prometheus.io"}

// ---------------------------------------------------------------------------------------------
// Repository view with optional in-memory overrides.

type repo struct {
	root string
	over map[string]string // slash path relative to root → replacement content
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return &repo{root: root, over: map[string]string{}}
}

func (r *repo) with(p, content string) *repo {
	over := map[string]string{}
	for k, v := range r.over {
		over[k] = v
	}
	over[p] = content
	return &repo{root: r.root, over: over}
}

func (r *repo) read(p string) (string, error) {
	if c, ok := r.over[p]; ok {
		return c, nil
	}
	b, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(p)))
	return string(b), err
}

func (r *repo) exists(p string) bool {
	p = strings.TrimSuffix(path.Clean(p), "/")
	for k := range r.over {
		if k == p || strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	_, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(p)))
	return err == nil
}

// files lists the regular files under dir (slash paths relative to the root), sorted.
func (r *repo) files(dir string) []string {
	set := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(r.root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(r.root, p)
			set[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	for k := range r.over {
		if strings.HasPrefix(k, dir+"/") {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// materialize copies the files under dir (with overrides) into a temporary directory, for
// external tools.
func (r *repo) materialize(t *testing.T, dir string) string {
	t.Helper()
	tmp := t.TempDir()
	for _, f := range r.files(dir) {
		c, err := r.read(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(tmp, filepath.FromSlash(strings.TrimPrefix(f, dir+"/")))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

// problems collects what a check found.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// ---------------------------------------------------------------------------------------------
// rtpbridge configuration files.

type rbConfig struct {
	file string
	keys map[string]any
}

func loadConfig(r *repo, file string) (*rbConfig, error) {
	src, err := r.read(file)
	if err != nil {
		return nil, err
	}
	return parseConfig(file, src)
}

func parseConfig(file, src string) (*rbConfig, error) {
	keys, err := parseTOML(file, src)
	if err != nil {
		return nil, err
	}
	return &rbConfig{file: file, keys: keys}, nil
}

func (c *rbConfig) get(key string) any {
	if c != nil {
		if v, ok := c.keys[key]; ok {
			return v
		}
	}
	return configDefaults[key]
}

func (c *rbConfig) int(key string) int64 {
	n, _ := c.get(key).(int64)
	return n
}

func (c *rbConfig) str(key string) string {
	s, _ := c.get(key).(string)
	return s
}

func (c *rbConfig) portRange() (int64, int64) {
	a, _ := c.get("rtp_port_range").([]any)
	if len(a) != 2 {
		return 0, 0
	}
	s, _ := a[0].(int64)
	e, _ := a[1].(int64)
	return s, e
}

func (c *rbConfig) name() string {
	if c == nil {
		return "the built-in defaults"
	}
	return c.file
}

// listenPorts returns the ports of the listen key.
func (c *rbConfig) listenPorts() map[int]bool {
	out := map[int]bool{}
	for _, a := range strings.Split(c.str("listen"), ",") {
		i := strings.LastIndex(a, ":")
		if n, err := strconv.Atoi(strings.TrimSpace(a[i+1:])); i >= 0 && err == nil {
			out[n] = true
		}
	}
	return out
}

// configArg returns the value of -c/--config in an argument list.
func configArg(args []string) (string, bool) {
	for i, a := range args {
		for _, f := range []string{"-c", "--config", "-config"} {
			if a == f && i+1 < len(args) {
				return args[i+1], true
			}
			if strings.HasPrefix(a, f+"=") {
				return strings.TrimPrefix(a, f+"="), true
			}
		}
	}
	return "", false
}

func flagArg(args []string, names ...string) (string, bool) {
	for i, a := range args {
		for _, f := range names {
			if a == f && i+1 < len(args) {
				return args[i+1], true
			}
			if strings.HasPrefix(a, f+"=") {
				return strings.TrimPrefix(a, f+"="), true
			}
		}
	}
	return "", false
}

// checkConfigKeys: every TOML file under deploy/ parses, uses only known keys with the right
// value types, and satisfies the §26 rules the checks rely on.
func checkConfigKeys(r *repo) problems {
	var p problems
	known := map[string]bool{}
	for _, k := range configKeys {
		known[k] = true
	}
	n := 0
	for _, f := range r.files("deploy") {
		if !strings.HasSuffix(f, ".toml") {
			continue
		}
		n++
		c, err := loadConfig(r, f)
		if err != nil {
			p.add("%v", err)
			continue
		}
		for k, v := range c.keys {
			if !known[k] {
				p.add("%s: unknown key %q (PROTOCOL.md §26 keys and opus_complexity only; rtpbridge refuses to start)", f, k)
				continue
			}
			switch {
			case stringKeys[k]:
				if _, ok := v.(string); !ok {
					p.add("%s: %s must be a string", f, k)
				}
			case k == "rtp_port_range":
				a, ok := v.([]any)
				valid := ok && len(a) == 2
				for _, e := range a {
					if _, isInt := e.(int64); !isInt {
						valid = false
					}
				}
				if !valid {
					p.add("%s: rtp_port_range must be [start, end] integers", f)
				}
			default:
				if _, ok := v.(int64); !ok {
					p.add("%s: %s must be an integer", f, k)
				}
			}
		}
		if s, e := c.portRange(); s > e || s < 1024 || e < 1024 || s%2 != 0 || e > 65534 || e-s < 1 {
			p.add("%s: rtp_port_range [%d, %d] breaks §26 (start <= end, both >= 1024, start even, end <= 65534, end - start >= 1)", f, s, e)
		}
		if c.int("shutdown_max_wait_secs") <= 0 {
			p.add("%s: shutdown_max_wait_secs must be > 0", f)
		}
		if v, ok := c.keys["listen"].(string); ok && len(c.listenPorts()) == 0 {
			p.add("%s: listen %q has no ip:port entry", f, v)
		}
	}
	if n == 0 {
		p.add("no TOML configuration found under deploy/")
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// Dockerfile.

func loadDockerfile(r *repo) (*dockerfile, error) {
	src, err := r.read("Dockerfile")
	if err != nil {
		return nil, err
	}
	return parseDockerfile(src)
}

// dockerConfigSource returns the repository file the Dockerfile copies to container path dst.
func dockerConfigSource(df *dockerfile, dst string) string {
	for _, st := range df.stages {
		for _, in := range st.insts {
			if in.cmd != "COPY" || strings.Contains(in.args, "--from") {
				continue
			}
			f := strings.Fields(in.args)
			if len(f) == 2 && f[1] == dst {
				return strings.TrimPrefix(path.Clean(f[0]), "./")
			}
		}
	}
	return ""
}

func checkDockerfile(r *repo) problems {
	var p problems
	df, err := loadDockerfile(r)
	if err != nil {
		p.add("Dockerfile: %v", err)
		return p
	}
	if len(df.stages) < 2 {
		p.add("Dockerfile: want a multi-stage build (build + runtime), found %d stage(s)", len(df.stages))
		return p
	}
	for i, st := range df.stages {
		if !strings.Contains(st.image, "trixie") {
			p.add("Dockerfile: stage %d is FROM %q, not Debian trixie", i+1, st.image)
		}
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]
	if !strings.HasPrefix(build.image, "golang:") {
		p.add("Dockerfile: the build stage should be an official golang image, is %q", build.image)
	}
	if !strings.HasPrefix(final.image, "debian:trixie-slim") {
		p.add("Dockerfile: the runtime stage should be debian:trixie-slim, is %q", final.image)
	}

	// The Go toolchain must be at least go.mod's go line (GOTOOLCHAIN=local in golang images).
	if gomod, err := r.read("go.mod"); err == nil {
		want := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindStringSubmatch(gomod)
		have := regexp.MustCompile(`^golang:([0-9][0-9.]*)`).FindStringSubmatch(build.image)
		switch {
		case want == nil:
			p.add("go.mod has no go line")
		case have == nil:
			p.add("Dockerfile: cannot read the Go version from %q", build.image)
		case versionLess(have[1], want[1]):
			p.add("Dockerfile: Go %s in the build stage is older than go.mod's go %s (golang images do not download toolchains)", have[1], want[1])
		}
	}

	// Build stage order: ffmpeg/ copied and built before anything else of the source tree.
	var ffmpegRun, ffmpegCopy, copyAll, modCopy, modDownload, goBuild = -1, -1, -1, -1, -1, -1
	var envText string
	for i, in := range build.insts {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) >= 2 {
				srcs := f[:len(f)-1]
				for _, s := range srcs {
					s = strings.TrimSuffix(strings.TrimPrefix(s, "./"), "/")
					switch {
					case s == "ffmpeg" || strings.HasPrefix(s, "ffmpeg/"):
						if ffmpegCopy < 0 {
							ffmpegCopy = i
						}
					case s == "." && copyAll < 0:
						copyAll = i
					case s == "go.mod" && modCopy < 0:
						modCopy = i
					}
				}
			}
		case "ENV":
			envText += " " + in.args
		case "RUN":
			switch {
			case regexp.MustCompile(`(^|[\s;&])(\./)?ffmpeg/build\.sh\s+/opt/ffmpeg\b`).MatchString(in.args):
				ffmpegRun = i
			case strings.Contains(in.args, "go mod download"):
				modDownload = i
			case strings.Contains(in.args, "go build"):
				goBuild = i
				envText += " " + in.args
				for _, want := range []string{"-trimpath", `-s -w`, "./cmd/rtpbridge"} {
					if !strings.Contains(in.args, want) {
						p.add("Dockerfile:%d: go build lacks %q", in.line, want)
					}
				}
			}
		}
	}
	switch {
	case ffmpegRun < 0:
		p.add("Dockerfile: the build stage does not run `ffmpeg/build.sh /opt/ffmpeg`")
	case copyAll >= 0 && copyAll < ffmpegRun:
		p.add("Dockerfile: `COPY . .` before ffmpeg/build.sh makes the FFmpeg layer depend on every source file")
	case ffmpegCopy < 0 || ffmpegCopy > ffmpegRun:
		p.add("Dockerfile: ffmpeg/ must be copied before ffmpeg/build.sh runs")
	}
	if modCopy < 0 || modDownload < 0 || modDownload < modCopy || (copyAll >= 0 && copyAll < modDownload) {
		p.add("Dockerfile: copy go.mod/go.sum and run `go mod download` before copying the source tree")
	}
	if goBuild < 0 {
		p.add("Dockerfile: the build stage has no `go build`")
	}
	for _, want := range []string{"CGO_ENABLED=1", "PKG_CONFIG_PATH=/opt/ffmpeg/lib/pkgconfig"} {
		if !strings.Contains(envText, want) {
			p.add("Dockerfile: the Go build needs %s", want)
		}
	}

	// Runtime stage.
	var user, stopsignal string
	var exposed, entry, cmd, apt bool
	var cmdArgs []string
	for _, in := range final.insts {
		switch in.cmd {
		case "USER":
			user = strings.TrimSpace(in.args)
		case "EXPOSE":
			for _, f := range strings.Fields(in.args) {
				if f == "9100" || f == "9100/tcp" {
					exposed = true
				}
			}
		case "ENTRYPOINT":
			v, ok := execForm(in.args)
			entry = ok && len(v) > 0
			if !entry {
				p.add("Dockerfile:%d: ENTRYPOINT must be exec form (JSON array) so rtpbridge is PID 1 and gets SIGTERM", in.line)
			} else if v[0] != "/usr/local/bin/rtpbridge" {
				p.add("Dockerfile:%d: ENTRYPOINT should start /usr/local/bin/rtpbridge, starts %q", in.line, v[0])
			}
		case "CMD":
			v, ok := execForm(in.args)
			cmd = ok
			cmdArgs = v
			if !ok {
				p.add("Dockerfile:%d: CMD must be exec form (JSON array)", in.line)
			}
		case "STOPSIGNAL":
			stopsignal = strings.TrimSpace(in.args)
		case "HEALTHCHECK":
			if strings.TrimSpace(in.args) == "NONE" {
				break
			}
			if !strings.Contains(in.args, "/health") || !strings.Contains(in.args, "9100") {
				p.add("Dockerfile:%d: HEALTHCHECK should GET /health on port 9100 (/ready fails while draining and would mark a draining container unhealthy)", in.line)
			}
		case "RUN":
			if strings.Contains(in.args, "apt-get install") {
				apt = true
				if !regexp.MustCompile(`\bca-certificates\b`).MatchString(in.args) {
					p.add("Dockerfile:%d: the runtime stage must install ca-certificates (URL playback over HTTPS)", in.line)
				}
				if !strings.Contains(in.args, "--no-install-recommends") {
					p.add("Dockerfile:%d: use apt-get install --no-install-recommends", in.line)
				}
			}
		}
	}
	if !apt {
		p.add("Dockerfile: the runtime stage installs nothing (it needs ca-certificates)")
	}
	u := strings.SplitN(user, ":", 2)[0]
	if u == "" || u == "root" || u == "0" {
		p.add("Dockerfile: the runtime stage must end with a non-root USER, has %q", user)
	}
	if !exposed {
		p.add("Dockerfile: the runtime stage must EXPOSE 9100")
	}
	if !entry {
		p.add("Dockerfile: the runtime stage needs an exec-form ENTRYPOINT")
	}
	if stopsignal != "" && stopsignal != "SIGTERM" && stopsignal != "15" {
		p.add("Dockerfile: STOPSIGNAL %s: rtpbridge drains on SIGTERM", stopsignal)
	}
	if cmd {
		cfgPath, ok := configArg(cmdArgs)
		if !ok {
			p.add("Dockerfile: CMD should pass -c <config>")
		} else if src := dockerConfigSource(df, cfgPath); src == "" {
			p.add("Dockerfile: CMD uses %s but nothing is copied there", cfgPath)
		} else if c, err := loadConfig(r, src); err != nil {
			p.add("Dockerfile: %v", err)
		} else if !c.listenPorts()[9100] {
			p.add("Dockerfile: %s does not listen on port 9100, which the image EXPOSEs and health-checks", src)
		}
	}
	// COPY sources from the build context must exist.
	for _, st := range df.stages {
		for _, in := range st.insts {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			if in.cmd == "ADD" {
				p.add("Dockerfile:%d: use COPY, not ADD (ADD fetches URLs and unpacks archives)", in.line)
			}
			if strings.Contains(in.args, "--from") {
				continue
			}
			f := strings.Fields(in.args)
			for _, s := range f[:len(f)-1] {
				if strings.HasPrefix(s, "--") {
					continue
				}
				if !r.exists(strings.TrimPrefix(s, "./")) {
					p.add("Dockerfile:%d: COPY source %s does not exist", in.line, s)
				}
			}
		}
	}
	return p
}

// versionLess compares dotted numeric versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// checkDockerignore: local build output stays out of the build context, and nothing the
// Dockerfile copies is ignored.
func checkDockerignore(r *repo) problems {
	var p problems
	src, err := r.read(".dockerignore")
	if err != nil {
		p.add(".dockerignore: %v", err)
		return p
	}
	pats := map[string]bool{}
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && l[0] != '#' {
			pats[strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/")] = true
		}
	}
	for _, want := range []string{".git", "bin", "ffmpeg/build", "ffmpeg/prefix", "recordings/*"} {
		if !pats[want] {
			p.add(".dockerignore must exclude %s", want)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "ffmpeg", "ffmpeg/build.sh", "ffmpeg/versions.env", "ffmpeg/configure.flags", "cmd", "pkg", "deploy", "deploy/docker"} {
		if pats[keep] || pats[keep+"/*"] || pats[keep+"/**"] {
			p.add(".dockerignore excludes %s, which the Dockerfile needs", keep)
		}
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml.

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate applies compose variable defaults as if no variable were set.
func interpolate(s string) string {
	s = strings.ReplaceAll(s, "$$", "\x00")
	s = composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if strings.HasSuffix(sub[2], "-") {
			return sub[3]
		}
		return ""
	})
	return strings.ReplaceAll(s, "\x00", "$")
}

type portMapping struct {
	hostIP     string // "" = every interface
	host, cont [2]int
	proto      string
}

// loopbackIP reports whether s is a loopback address ("" and wildcards are not).
func loopbackIP(s string) bool {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil && a.IsLoopback()
}

func parsePortRange(s string) ([2]int, error) {
	a, b, isRange := strings.Cut(s, "-")
	x, err := strconv.Atoi(a)
	if err != nil {
		return [2]int{}, err
	}
	y := x
	if isRange {
		if y, err = strconv.Atoi(b); err != nil {
			return [2]int{}, err
		}
	}
	return [2]int{x, y}, nil
}

func composePorts(v any) ([]portMapping, error) {
	var out []portMapping
	for _, e := range ylist(v) {
		var pm portMapping
		switch e := e.(type) {
		case string:
			s := interpolate(e)
			s, proto, _ := strings.Cut(s, "/")
			pm.proto = proto
			if strings.HasPrefix(s, "[") { // [IPv6]:host:container
				ip, rest, ok := strings.Cut(s[1:], "]:")
				if !ok {
					return nil, fmt.Errorf("port %q: unterminated IPv6 address", e)
				}
				pm.hostIP, s = ip, rest
			}
			parts := strings.Split(s, ":")
			if len(parts) == 3 {
				pm.hostIP, parts = parts[0], parts[1:]
			}
			var err error
			if pm.cont, err = parsePortRange(parts[len(parts)-1]); err != nil {
				return nil, fmt.Errorf("port %q: %v", e, err)
			}
			pm.host = pm.cont
			if len(parts) >= 2 {
				if pm.host, err = parsePortRange(parts[len(parts)-2]); err != nil {
					return nil, fmt.Errorf("port %q: %v", e, err)
				}
			}
		case map[string]any:
			var err error
			if pm.cont, err = parsePortRange(interpolate(ystr(e, "target"))); err != nil {
				return nil, fmt.Errorf("port target: %v", err)
			}
			pm.host = pm.cont
			if pub := ystr(e, "published"); pub != "" {
				if pm.host, err = parsePortRange(interpolate(pub)); err != nil {
					return nil, fmt.Errorf("port published: %v", err)
				}
			}
			pm.proto = ystr(e, "protocol")
			pm.hostIP = interpolate(ystr(e, "host_ip"))
		default:
			return nil, fmt.Errorf("unsupported port entry %v", e)
		}
		if pm.proto == "" {
			pm.proto = "tcp"
		}
		out = append(out, pm)
	}
	return out, nil
}

type mount struct {
	source, target string
	readOnly       bool
}

func composeVolumes(v any) []mount {
	var out []mount
	for _, e := range ylist(v) {
		switch e := e.(type) {
		case string:
			f := strings.Split(interpolate(e), ":")
			if len(f) < 2 {
				continue
			}
			m := mount{source: f[0], target: f[1]}
			if len(f) > 2 {
				for _, o := range strings.Split(f[2], ",") {
					m.readOnly = m.readOnly || o == "ro"
				}
			}
			out = append(out, m)
		case map[string]any:
			out = append(out, mount{source: ystr(e, "source"), target: ystr(e, "target"), readOnly: ystr(e, "read_only") == "true"})
		}
	}
	return out
}

func argList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(interpolate(v))
	case []any:
		var out []string
		for _, e := range v {
			s, _ := e.(string)
			out = append(out, interpolate(s))
		}
		return out
	}
	return nil
}

func checkCompose(r *repo) problems {
	var p problems
	src, err := r.read("docker-compose.yml")
	if err != nil {
		p.add("docker-compose.yml: %v", err)
		return p
	}
	doc, err := parseYAML("docker-compose.yml", src)
	if err != nil {
		p.add("%v", err)
		return p
	}
	svc := ymap(doc, "services", "rtpbridge")
	if svc == nil {
		p.add("docker-compose.yml: no service `rtpbridge`")
		return p
	}
	if b := yget(svc, "build"); b == nil {
		p.add("docker-compose.yml: rtpbridge must be built from the Dockerfile (build:)")
	} else {
		ctx, file := ".", "Dockerfile"
		if s, ok := b.(string); ok {
			ctx = s
		} else {
			if s := ystr(b, "context"); s != "" {
				ctx = s
			}
			if s := ystr(b, "dockerfile"); s != "" {
				file = s
			}
		}
		if path.Clean(ctx) != "." || path.Clean(file) != "Dockerfile" {
			p.add("docker-compose.yml: build should use context . and the Dockerfile, has %s and %s", ctx, file)
		}
	}

	// The configuration the container runs with: -c in command (or the image's CMD), found in
	// a bind mount or else in the image.
	args := argList(yget(svc, "command"))
	df, _ := loadDockerfile(r)
	if args == nil && df != nil {
		for _, in := range df.stages[len(df.stages)-1].insts {
			if in.cmd == "CMD" {
				args, _ = execForm(in.args)
			}
		}
	}
	vols := composeVolumes(yget(svc, "volumes"))
	var cfg *rbConfig
	if cfgPath, ok := configArg(args); ok {
		src := ""
		for _, m := range vols {
			if m.target == cfgPath {
				src = strings.TrimPrefix(path.Clean(m.source), "./")
			}
		}
		if src == "" && df != nil {
			src = dockerConfigSource(df, cfgPath)
		}
		if src == "" {
			p.add("docker-compose.yml: the config %s is neither mounted nor in the image", cfgPath)
		} else if cfg, err = loadConfig(r, src); err != nil {
			p.add("docker-compose.yml: %v", err)
		}
	}

	// Graceful shutdown.
	if sig := ystr(svc, "stop_signal"); sig != "" && sig != "SIGTERM" {
		p.add("docker-compose.yml: stop_signal %s: rtpbridge drains on SIGTERM", sig)
	}
	wait := cfg.int("shutdown_max_wait_secs")
	gp := ystr(svc, "stop_grace_period")
	if gp == "" {
		p.add("docker-compose.yml: no stop_grace_period: Docker's default 10 s would SIGKILL a drain of up to %d s (%s)", wait, cfg.name())
	} else if d, err := time.ParseDuration(gp); err != nil {
		p.add("docker-compose.yml: stop_grace_period %q: %v", gp, err)
	} else if d < time.Duration(wait+minGraceMargin)*time.Second {
		p.add("docker-compose.yml: stop_grace_period %s must exceed shutdown_max_wait_secs = %d of %s by at least %d s", gp, wait, cfg.name(), minGraceMargin)
	}

	// Networking. The control port has no authentication: it must only be reachable from this
	// host unless someone widens it deliberately.
	listen, listenFrom := cfg.str("listen"), cfg.name()
	if l, ok := flagArg(args, "-l", "--listen", "-listen"); ok {
		listen, listenFrom = l, "--listen"
	}
	var listenAddrs []netip.AddrPort
	for _, a := range strings.Split(listen, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			p.add("docker-compose.yml: listen address %q (%s): %v", a, listenFrom, err)
			continue
		}
		listenAddrs = append(listenAddrs, ap)
	}
	s, e := cfg.portRange()
	if ms := cfg.int("max_sessions"); e > s && ms > (e-s+1)/2 {
		p.add("docker-compose.yml: max_sessions = %d of %s exceeds the %d RTP port pairs of rtp_port_range [%d, %d]: size the two together", ms, cfg.name(), (e-s+1)/2, s, e)
	}
	if ystr(svc, "network_mode") == "host" {
		// Every port is a host port: ports: would be ignored, so only the listen address keeps
		// the control port off the network.
		if _, ok := svc["ports"]; ok {
			p.add("docker-compose.yml: `ports:` is ignored with network_mode: host (every port is a host port); remove it and restrict the control port by its listen address")
		}
		if _, ok := svc["networks"]; ok {
			p.add("docker-compose.yml: network_mode: host cannot be combined with networks:")
		}
		health := false
		for _, ap := range listenAddrs {
			if !ap.Addr().IsLoopback() {
				p.add("docker-compose.yml: with network_mode: host the control port listens on %s (%s), which exposes it beyond this host; it has no authentication: listen on loopback (127.0.0.1:9100) by default", ap, listenFrom)
			}
			health = health || ap == netip.MustParseAddrPort("127.0.0.1:9100")
		}
		if !health && ymap(svc, "healthcheck") == nil {
			p.add("docker-compose.yml: the listen addresses %q do not include 127.0.0.1:9100, where the image's HEALTHCHECK sends GET /health", listen)
		}
		if _, ok := flagArg(args, "-m", "--media-ip"); !ok {
			p.add("docker-compose.yml: pass --media-ip (a host address the peers reach) with network_mode: host; the default 127.0.0.1 reaches peers on this host only")
		}
	} else {
		// Bridge networking: control published on loopback only, exactly rtp_port_range 1:1,
		// media_ip the container's own address.
		ports, err := composePorts(yget(svc, "ports"))
		if err != nil {
			p.add("docker-compose.yml: %v", err)
		}
		var ctl, rtp bool
		for _, pm := range ports {
			if pm.proto == "tcp" && pm.cont[0] <= 9100 && 9100 <= pm.cont[1] {
				ctl = true
				if !loopbackIP(pm.hostIP) {
					host := pm.hostIP
					if host == "" {
						host = "every interface"
					}
					p.add("docker-compose.yml: the control port 9100/tcp is published on %s; it has no authentication: publish it on loopback (\"127.0.0.1:9100:9100/tcp\") by default", host)
				}
			}
			if pm.proto == "udp" {
				if pm.cont != [2]int{int(s), int(e)} || pm.host != pm.cont {
					p.add("docker-compose.yml: UDP ports %v→%v must publish rtp_port_range [%d, %d] of %s 1:1", pm.host, pm.cont, s, e, cfg.name())
				}
				rtp = true
			}
		}
		if !ctl {
			p.add("docker-compose.yml: port 9100/tcp is not published")
		}
		if !rtp {
			p.add("docker-compose.yml: rtp_port_range [%d, %d] is not published (or use network_mode: host)", s, e)
		}
		// Networks must be declared, and a fixed address must lie in the declared subnet.
		var addrs []string
		for name, n := range ymap(svc, "networks") {
			decl, declared := ymap(doc, "networks")[name]
			if !declared {
				p.add("docker-compose.yml: network %q is not declared under the top-level networks:", name)
			}
			a := interpolate(ystr(n, "ipv4_address"))
			if a == "" {
				continue
			}
			addrs = append(addrs, a)
			if ip, err := netip.ParseAddr(a); err != nil {
				p.add("docker-compose.yml: ipv4_address %q: %v", a, err)
			} else if declared {
				in := false
				for _, c := range ylist(decl, "ipam", "config") {
					if pfx, err := netip.ParsePrefix(interpolate(ystr(c, "subnet"))); err == nil && pfx.Contains(ip) {
						in = true
					}
				}
				if !in {
					p.add("docker-compose.yml: ipv4_address %s is not in a subnet of network %q", a, name)
				}
			}
		}
		// Inside the container the control listener must take what Docker forwards.
		reach := false
		for _, ap := range listenAddrs {
			reach = reach || (ap.Port() == 9100 && (ap.Addr().IsUnspecified() || slices.Contains(addrs, ap.Addr().String())))
		}
		if ctl && !reach {
			p.add("docker-compose.yml: the published control port cannot reach rtpbridge listening on %q (%s): with bridge networking listen on 0.0.0.0:9100 inside the container", listen, listenFrom)
		}
		// media_ip must be the container's own address on its network.
		if ip, ok := flagArg(args, "-m", "--media-ip"); ok {
			if !slices.Contains(addrs, ip) {
				p.add("docker-compose.yml: --media-ip %s is not the container's ipv4_address %v: media would bind an address the container does not have", ip, addrs)
			}
		}
	}

	// no-new-privileges, in the current key=value form.
	nnp := false
	for _, o := range ylist(svc, "security_opt") {
		switch o, _ := o.(string); {
		case o == "no-new-privileges=true" || o == "no-new-privileges":
			nnp = true
		case strings.HasPrefix(o, "no-new-privileges:"):
			p.add("docker-compose.yml: security_opt %q uses the deprecated \":\" form: write no-new-privileges=true", o)
		}
	}
	if !nnp {
		p.add("docker-compose.yml: security_opt should set no-new-privileges=true")
	}

	// Volumes for recordings and media (read-only) at the configured directories.
	var rec, media bool
	for _, m := range vols {
		if m.target == cfg.str("recording_dir") {
			rec = true
			if m.readOnly {
				p.add("docker-compose.yml: the recordings volume must be writable")
			}
		}
		if md := cfg.str("media_dir"); md != "" && m.target == md {
			media = true
			if !m.readOnly {
				p.add("docker-compose.yml: mount media read-only (:ro)")
			}
		}
	}
	if !rec {
		p.add("docker-compose.yml: no volume at recording_dir %s", cfg.str("recording_dir"))
	}
	if !media {
		p.add("docker-compose.yml: no read-only volume at media_dir %q", cfg.str("media_dir"))
	}
	if hc := ymap(svc, "healthcheck"); hc != nil {
		t := fmt.Sprint(yget(hc, "test"))
		if ystr(hc, "disable") != "true" && !strings.Contains(t, "/health") {
			p.add("docker-compose.yml: the healthcheck should use /health (it stays 200 while draining)")
		}
	}
	return p
}

// composeBridgeVariant turns docker-compose.yml into its documented bridge-networking variant:
// the lines from "# host networking: begin" to "# host networking: end" are deleted and the
// lines between "# bridge networking: begin" and "# bridge networking: end" uncommented (the
// first "# " after the indentation removed), the edit the file's header tells operators to
// make.
func composeBridgeVariant(src string) (string, error) {
	var out []string
	block := ""
	hosts, bridges := 0, 0
	for n, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		switch t {
		case "# host networking: begin", "# bridge networking: begin":
			if block != "" {
				return "", fmt.Errorf("docker-compose.yml:%d: %q inside the %s networking block", n+1, t, block)
			}
			block = strings.Fields(t)[1]
			if block == "host" {
				hosts++
				continue
			}
			bridges++
			out = append(out, l)
			continue
		case "# host networking: end", "# bridge networking: end":
			if end := strings.Fields(t)[1]; end != block {
				return "", fmt.Errorf("docker-compose.yml:%d: %q without its begin", n+1, t)
			}
			if block == "bridge" {
				out = append(out, l)
			}
			block = ""
			continue
		}
		switch block {
		case "host":
		case "bridge":
			ind := l[:len(l)-len(strings.TrimLeft(l, " "))]
			rest := strings.TrimPrefix(l, ind)
			if !strings.HasPrefix(rest, "#") {
				return "", fmt.Errorf("docker-compose.yml:%d: uncommented line inside the bridge networking block", n+1)
			}
			rest = strings.TrimPrefix(strings.TrimPrefix(rest, "#"), " ")
			out = append(out, ind+rest)
		default:
			out = append(out, l)
		}
	}
	switch {
	case block != "":
		return "", fmt.Errorf("docker-compose.yml: the %s networking block does not end", block)
	case hosts == 0 || bridges == 0:
		return "", fmt.Errorf("docker-compose.yml: want \"host networking\" and \"bridge networking\" begin/end blocks (the documented bridge variant), found %d and %d", hosts, bridges)
	}
	return strings.Join(out, "\n"), nil
}

// checkComposeBridge applies checkCompose to the bridge-networking variant that
// docker-compose.yml documents in comments, so the commented alternative cannot rot.
func checkComposeBridge(r *repo) problems {
	var p problems
	src, err := r.read("docker-compose.yml")
	if err != nil {
		p.add("docker-compose.yml: %v", err)
		return p
	}
	variant, err := composeBridgeVariant(src)
	if err != nil {
		p.add("bridge networking variant: %v", err)
		return p
	}
	if doc, err := parseYAML("docker-compose.yml", variant); err == nil {
		if ystr(doc, "services", "rtpbridge", "network_mode") != "" || yget(doc, "services", "rtpbridge", "ports") == nil {
			p.add("bridge networking variant: the rtpbridge service should have ports: and no network_mode")
		}
	}
	for _, pr := range checkCompose(r.with("docker-compose.yml", variant)) {
		p.add("bridge networking variant: %s", pr)
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// Kubernetes manifests.

type k8sSet struct {
	objects []map[string]any
	// generated ConfigMaps: name → key → content
	generated map[string]map[string]string
}

func loadKubernetes(r *repo, dir string) (*k8sSet, error) {
	set := &k8sSet{generated: map[string]map[string]string{}}
	var files []string
	if r.exists(dir + "/kustomization.yaml") {
		src, err := r.read(dir + "/kustomization.yaml")
		if err != nil {
			return nil, err
		}
		k, err := parseYAML(dir+"/kustomization.yaml", src)
		if err != nil {
			return nil, err
		}
		for _, res := range ylist(k, "resources") {
			s, _ := res.(string)
			files = append(files, path.Join(dir, s))
		}
		for _, g := range ylist(k, "configMapGenerator") {
			name := ystr(g, "name")
			set.generated[name] = map[string]string{}
			for _, f := range ylist(g, "files") {
				s, _ := f.(string)
				key, file, ok := strings.Cut(s, "=")
				if !ok {
					key, file = path.Base(s), s
				}
				c, err := r.read(path.Join(dir, file))
				if err != nil {
					return nil, fmt.Errorf("%s/kustomization.yaml: configMapGenerator %s: %v", dir, name, err)
				}
				set.generated[name][key] = c
			}
		}
	} else {
		for _, f := range r.files(dir) {
			if strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		src, err := r.read(f)
		if err != nil {
			return nil, err
		}
		docs, err := parseYAMLDocs(f, src)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			m, ok := d.(map[string]any)
			if !ok || ystr(m, "kind") == "" || ystr(m, "apiVersion") == "" {
				return nil, fmt.Errorf("%s: a document without kind/apiVersion", f)
			}
			set.objects = append(set.objects, m)
		}
	}
	return set, nil
}

func (s *k8sSet) byKind(kinds ...string) []map[string]any {
	var out []map[string]any
	for _, o := range s.objects {
		for _, k := range kinds {
			if ystr(o, "kind") == k {
				out = append(out, o)
			}
		}
	}
	return out
}

func (s *k8sSet) configMapData(name, key string) (string, bool) {
	if g, ok := s.generated[name]; ok {
		c, ok := g[key]
		return c, ok
	}
	for _, o := range s.byKind("ConfigMap") {
		if ystr(o, "metadata", "name") == name {
			c, ok := yget(o, "data", key).(string)
			return c, ok
		}
	}
	return "", false
}

// selects reports whether selector labels all appear in labels.
func selects(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkKubernetes(r *repo) problems {
	var p problems
	const dir = "deploy/kubernetes"
	set, err := loadKubernetes(r, dir)
	if err != nil {
		p.add("%v", err)
		return p
	}
	workloads := set.byKind("StatefulSet", "Deployment", "DaemonSet")
	if len(workloads) != 1 {
		p.add("%s: want exactly one rtpbridge workload, found %d", dir, len(workloads))
		return p
	}
	w := workloads[0]
	kind := ystr(w, "kind")
	pod := ymap(w, "spec", "template", "spec")
	podLabels := ymap(w, "spec", "template", "metadata", "labels")
	var ctr map[string]any
	for _, c := range ylist(pod, "containers") {
		if ystr(c, "name") == "rtpbridge" {
			ctr, _ = c.(map[string]any)
		}
	}
	if ctr == nil {
		p.add("%s: %s has no container named rtpbridge", dir, kind)
		return p
	}
	args := argList(yget(ctr, "command"))
	args = append(args, argList(yget(ctr, "args"))...)

	// The configuration: -c path → volume mount → ConfigMap key.
	var cfg *rbConfig
	cfgPath, ok := configArg(args)
	if !ok {
		p.add("%s: the container should pass -c <config>", dir)
	} else {
		volName, key := "", ""
		for _, vm := range ylist(ctr, "volumeMounts") {
			mp := ystr(vm, "mountPath")
			switch {
			case ystr(vm, "subPath") != "" && mp == cfgPath:
				volName, key = ystr(vm, "name"), ystr(vm, "subPath")
			case path.Dir(cfgPath) == path.Clean(mp):
				volName, key = ystr(vm, "name"), path.Base(cfgPath)
			}
		}
		cmName := ""
		for _, v := range ylist(pod, "volumes") {
			if ystr(v, "name") == volName {
				cmName = ystr(v, "configMap", "name")
			}
		}
		src, found := set.configMapData(cmName, key)
		switch {
		case volName == "" || cmName == "":
			p.add("%s: %s is not mounted from a ConfigMap", dir, cfgPath)
		case !found:
			p.add("%s: ConfigMap %s has no key %s", dir, cmName, key)
		default:
			if cfg, err = parseConfig(dir+" ConfigMap "+cmName+"/"+key, src); err != nil {
				p.add("%v", err)
			}
		}
	}

	// Graceful shutdown.
	wait := cfg.int("shutdown_max_wait_secs")
	tg, err := strconv.Atoi(ystr(pod, "terminationGracePeriodSeconds"))
	if err != nil {
		p.add("%s: terminationGracePeriodSeconds must be set (the default 30 s would SIGKILL a drain of up to %d s)", dir, wait)
	} else if int64(tg) < wait+minGraceMargin {
		p.add("%s: terminationGracePeriodSeconds %d must exceed shutdown_max_wait_secs = %d of %s by at least %d s", dir, tg, wait, cfg.name(), minGraceMargin)
	}

	// Probes on the control port.
	namedPorts := map[string]int{}
	ctlPort := false
	for _, cp := range ylist(ctr, "ports") {
		n, _ := strconv.Atoi(ystr(cp, "containerPort"))
		namedPorts[ystr(cp, "name")] = n
		if n == 9100 && (ystr(cp, "protocol") == "" || ystr(cp, "protocol") == "TCP") {
			ctlPort = true
		}
	}
	if !ctlPort {
		p.add("%s: the container does not declare containerPort 9100/TCP", dir)
	}
	if cfg != nil && !cfg.listenPorts()[9100] {
		p.add("%s: the config does not listen on port 9100", dir)
	}
	for _, pr := range []struct{ probe, path string }{{"readinessProbe", "/ready"}, {"livenessProbe", "/health"}} {
		hg := ymap(ctr, pr.probe, "httpGet")
		if hg == nil {
			p.add("%s: %s must be an httpGet probe on %s", dir, pr.probe, pr.path)
			continue
		}
		if got := ystr(hg, "path"); got != pr.path {
			p.add("%s: %s checks %q, want %s", dir, pr.probe, got, pr.path)
		}
		port := ystr(hg, "port")
		n, err := strconv.Atoi(port)
		if err != nil {
			n = namedPorts[port]
		}
		if n != 9100 {
			p.add("%s: %s uses port %q, want 9100", dir, pr.probe, port)
		}
	}

	// Security: non-root, read-only root filesystem, no privilege escalation.
	psc, csc := ymap(pod, "securityContext"), ymap(ctr, "securityContext")
	if ystr(psc, "runAsNonRoot") != "true" && ystr(csc, "runAsNonRoot") != "true" {
		p.add("%s: set runAsNonRoot: true", dir)
	}
	for _, sc := range []map[string]any{psc, csc} {
		if u := ystr(sc, "runAsUser"); u == "0" {
			p.add("%s: runAsUser 0", dir)
		}
	}
	if ystr(csc, "readOnlyRootFilesystem") != "true" {
		p.add("%s: set readOnlyRootFilesystem: true on the container", dir)
	}
	if ystr(csc, "allowPrivilegeEscalation") != "false" {
		p.add("%s: set allowPrivilegeEscalation: false on the container", dir)
	}

	// Writable directories on a read-only root: cache_dir on an emptyDir, recording_dir on a
	// volume (or claim template).
	emptyDirs, claims := map[string]bool{}, map[string]bool{}
	for _, v := range ylist(pod, "volumes") {
		if _, ok := yget(v, "emptyDir").(map[string]any); ok {
			emptyDirs[ystr(v, "name")] = true
		} else if yget(v, "persistentVolumeClaim") != nil {
			claims[ystr(v, "name")] = true
		}
	}
	for _, t := range ylist(w, "spec", "volumeClaimTemplates") {
		claims[ystr(t, "metadata", "name")] = true
	}
	mountedOn := func(dir string, ok map[string]bool) bool {
		best, name := "", ""
		for _, vm := range ylist(ctr, "volumeMounts") {
			mp := path.Clean(ystr(vm, "mountPath"))
			if (dir == mp || strings.HasPrefix(dir, mp+"/")) && len(mp) > len(best) {
				best, name = mp, ystr(vm, "name")
			}
		}
		return ok[name]
	}
	if !mountedOn(cfg.str("cache_dir"), emptyDirs) {
		p.add("%s: cache_dir %s must be on an emptyDir (the root filesystem is read-only)", dir, cfg.str("cache_dir"))
	}
	all := map[string]bool{}
	for k := range emptyDirs {
		all[k] = true
	}
	for k := range claims {
		all[k] = true
	}
	if !mountedOn(cfg.str("recording_dir"), all) {
		p.add("%s: recording_dir %s must be on a writable volume", dir, cfg.str("recording_dir"))
	}

	// media_ip from the downward API.
	if ip, ok := flagArg(args, "-m", "--media-ip"); !ok {
		p.add("%s: pass --media-ip $(POD_IP) (from status.podIP or status.hostIP): the default 127.0.0.1 is unreachable for peers", dir)
	} else if m := regexp.MustCompile(`^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$`).FindStringSubmatch(ip); m == nil {
		p.add("%s: --media-ip %s should come from the downward API as $(VAR)", dir, ip)
	} else {
		fp := ""
		for _, e := range ylist(ctr, "env") {
			if ystr(e, "name") == m[1] {
				fp = ystr(e, "valueFrom", "fieldRef", "fieldPath")
			}
		}
		if fp != "status.podIP" && fp != "status.hostIP" {
			p.add("%s: env %s must come from fieldRef status.podIP or status.hostIP, has %q", dir, m[1], fp)
		}
	}
	if ystr(pod, "hostNetwork") == "true" {
		if ystr(pod, "dnsPolicy") != "ClusterFirstWithHostNet" {
			p.add("%s: with hostNetwork set dnsPolicy: ClusterFirstWithHostNet", dir)
		}
		if s, e := cfg.portRange(); s <= 32767 && e >= 30000 {
			p.add("%s: with hostNetwork rtp_port_range [%d, %d] overlaps the NodePort range 30000-32767", dir, s, e)
		}
	}

	// Services, PodDisruptionBudget.
	var svc9100 bool
	headless := map[string]bool{}
	for _, s := range set.byKind("Service") {
		if !selects(ymap(s, "spec", "selector"), podLabels) {
			continue
		}
		if ystr(s, "spec", "clusterIP") == "None" {
			headless[ystr(s, "metadata", "name")] = true
		}
		for _, sp := range ylist(s, "spec", "ports") {
			proto := ystr(sp, "protocol")
			if ystr(sp, "port") == "9100" && (proto == "" || proto == "TCP") {
				svc9100 = true
			}
		}
	}
	if !svc9100 {
		p.add("%s: no Service exposes 9100/TCP for the rtpbridge pods", dir)
	}
	if kind == "StatefulSet" && !headless[ystr(w, "spec", "serviceName")] {
		p.add("%s: StatefulSet serviceName %q is not a headless Service selecting the pods", dir, ystr(w, "spec", "serviceName"))
	}
	pdb := false
	for _, d := range set.byKind("PodDisruptionBudget") {
		pdb = pdb || selects(ymap(d, "spec", "selector", "matchLabels"), podLabels)
	}
	if !pdb {
		p.add("%s: no PodDisruptionBudget selects the rtpbridge pods", dir)
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// systemd.

func checkSystemd(r *repo) problems {
	var p problems
	const file = "deploy/systemd/rtpbridge.service"
	src, err := r.read(file)
	if err != nil {
		p.add("%v", err)
		return p
	}
	u, err := parseUnit(file, src)
	if err != nil {
		p.add("%v", err)
		return p
	}
	svc := u["Service"]
	last := func(k string) string {
		if v := svc[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	if svc == nil {
		p.add("%s: no [Service] section", file)
		return p
	}
	if t := last("Type"); t != "exec" && t != "simple" && t != "notify" {
		p.add("%s: Type=%s; use exec (rtpbridge stays in the foreground)", file, t)
	}
	if usr := last("User"); usr == "" || usr == "root" || usr == "0" {
		p.add("%s: run as a dedicated user (User=rtpbridge), has %q", file, usr)
	}
	if ks := last("KillSignal"); ks != "" && ks != "SIGTERM" && ks != "TERM" && ks != "15" {
		p.add("%s: KillSignal=%s; rtpbridge drains on SIGTERM", file, ks)
	}
	if rs := last("Restart"); rs != "on-failure" && rs != "always" && rs != "on-abnormal" {
		p.add("%s: Restart=%s; use on-failure", file, rs)
	}
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes"} {
		if got := last(k); got != want && !(want == "yes" && got == "true") {
			p.add("%s: set %s=%s", file, k, want)
		}
	}

	// The configuration ExecStart uses, from deploy/systemd/.
	fields := strings.Fields(strings.TrimLeft(last("ExecStart"), "-@:+!"))
	var cfg *rbConfig
	if cfgPath, ok := configArg(fields); !ok {
		p.add("%s: ExecStart should pass -c <config>", file)
	} else if cfg, err = loadConfig(r, "deploy/systemd/"+path.Base(cfgPath)); err != nil {
		p.add("%s: the config it uses: %v", file, err)
	}
	wait := cfg.int("shutdown_max_wait_secs")
	ts := last("TimeoutStopSec")
	if ts == "" {
		ts = last("TimeoutSec")
	}
	if ts == "" {
		p.add("%s: set TimeoutStopSec (the default 90 s would SIGKILL a drain of up to %d s)", file, wait)
	} else if secs, err := systemdSeconds(ts); err != nil {
		p.add("%s: TimeoutStopSec=%s: %v", file, ts, err)
	} else if secs < float64(wait+minGraceMargin) {
		p.add("%s: TimeoutStopSec=%s must exceed shutdown_max_wait_secs = %d of %s by at least %d s", file, ts, wait, cfg.name(), minGraceMargin)
	}

	// Under ProtectSystem=strict only managed directories and ReadWritePaths are writable.
	var writable, existing []string
	for _, k := range []struct{ key, base string }{{"StateDirectory", "/var/lib/"}, {"CacheDirectory", "/var/cache/"}, {"LogsDirectory", "/var/log/"}, {"RuntimeDirectory", "/run/"}} {
		for _, v := range svc[k.key] {
			for _, d := range strings.Fields(v) {
				writable = append(writable, path.Join(k.base, strings.SplitN(d, ":", 2)[0]))
			}
		}
	}
	if !strings.Contains(strings.Join(svc["StateDirectory"], " "), "rtpbridge") {
		p.add("%s: set StateDirectory=rtpbridge", file)
	}
	for _, v := range svc["ReadWritePaths"] {
		for _, d := range strings.Fields(v) {
			writable = append(writable, strings.TrimLeft(d, "-+"))
		}
	}
	existing = append(existing, writable...)
	for _, v := range svc["ReadOnlyPaths"] {
		existing = append(existing, strings.Fields(v)...)
	}
	if last("PrivateTmp") == "yes" {
		writable = append(writable, "/tmp", "/var/tmp")
	}
	under := func(d string, roots []string) bool {
		for _, r := range roots {
			r = path.Clean(strings.TrimLeft(r, "-+"))
			if d == r || strings.HasPrefix(d, r+"/") {
				return true
			}
		}
		return false
	}
	for _, k := range []string{"recording_dir", "cache_dir"} {
		if d := cfg.str(k); !under(d, writable) {
			p.add("%s: %s %s is read-only under ProtectSystem=strict; add it to StateDirectory/CacheDirectory/ReadWritePaths", file, k, d)
		}
	}
	if md := cfg.str("media_dir"); md != "" && !under(md, existing) {
		p.add("%s: media_dir %s is not created by the unit (StateDirectory=) nor listed in ReadOnlyPaths/ReadWritePaths; start-up fails if it is missing", file, md)
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// Prometheus rules: metric names.

func checkRuleMetrics(r *repo) problems {
	var p problems
	known := map[string]bool{}
	for _, m := range metricNames {
		known[m] = true
	}
	n := 0
	for _, f := range r.files("deploy/prometheus") {
		if !strings.HasSuffix(f, "-rules.yml") && !strings.HasSuffix(f, ".rules.yml") {
			continue
		}
		src, err := r.read(f)
		if err != nil {
			p.add("%v", err)
			continue
		}
		doc, err := parseYAML(f, src)
		if err != nil {
			p.add("%v", err)
			continue
		}
		for _, g := range ylist(doc, "groups") {
			for _, rule := range ylist(g, "rules") {
				n++
				expr := ystr(rule, "expr")
				for _, m := range regexp.MustCompile(`\brtpbridge_[a-z0-9_]+\b`).FindAllString(expr, -1) {
					if !known[m] {
						p.add("%s: rule %s uses %s, which is not a PROTOCOL.md §25 metric", f, ystr(rule, "alert")+ystr(rule, "record"), m)
					}
				}
				if ystr(rule, "alert") != "" && ystr(rule, "labels", "severity") == "" {
					p.add("%s: alert %s has no severity label", f, ystr(rule, "alert"))
				}
			}
		}
	}
	if n == 0 {
		p.add("deploy/prometheus: no rules found")
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// nginx.

func checkNginx(r *repo) problems {
	var p problems
	const file = "deploy/nginx/rtpbridge.conf"
	src, err := r.read(file)
	if err != nil {
		p.add("%v", err)
		return p
	}
	root, err := parseNginx(src)
	if err != nil {
		p.add("%s: %v", file, err)
		return p
	}
	connVar := ""
	for _, m := range root.all("map") {
		if len(m.args) == 2 && m.args[0] == "$http_upgrade" {
			connVar = m.args[1]
		}
	}
	if connVar == "" {
		p.add("%s: no `map $http_upgrade $var` for the Connection header", file)
	}
	for _, u := range root.all("upstream") {
		for _, s := range u.all("server") {
			if len(s.args) == 0 || !strings.HasSuffix(s.args[0], ":9100") {
				p.add("%s: upstream server %v is not rtpbridge's port 9100", file, s.args)
			}
		}
	}
	var ws int
	for _, srv := range root.all("server") {
		for _, loc := range srv.all("location") {
			if len(loc.args) != 1 || loc.args[0] != "/" {
				continue
			}
			ws++
			hdr := map[string]string{}
			for _, h := range loc.all("proxy_set_header") {
				if len(h.args) == 2 {
					hdr[strings.ToLower(h.args[0])] = h.args[1]
				}
			}
			if hdr["upgrade"] != "$http_upgrade" {
				p.add("%s: location / must pass `proxy_set_header Upgrade $http_upgrade`", file)
			}
			if connVar != "" && hdr["connection"] != connVar {
				p.add("%s: location / must pass `proxy_set_header Connection %s`", file, connVar)
			}
			ver := loc.all("proxy_http_version")
			if len(ver) != 1 || len(ver[0].args) != 1 || ver[0].args[0] != "1.1" {
				p.add("%s: location / needs proxy_http_version 1.1 for WebSocket", file)
			}
			if len(loc.all("proxy_pass")) != 1 {
				p.add("%s: location / has no proxy_pass", file)
			}
			// Must outlast the server's pings with room to spare (default 60 s is too tight).
			for _, k := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
				ds := loc.all(k)
				if len(ds) != 1 || len(ds[0].args) != 1 {
					p.add("%s: location / should set %s for long-lived WebSockets", file, k)
					continue
				}
				d, err := nginxDuration(ds[0].args[0])
				if err != nil || d < 10*time.Duration(configDefaults["ws_ping_interval_secs"].(int64))*time.Second {
					p.add("%s: %s %s is too short for long-lived WebSockets (want >= 10 × ws_ping_interval_secs)", file, k, ds[0].args[0])
				}
			}
		}
	}
	if ws == 0 {
		p.add("%s: no `location /` proxying the WebSocket", file)
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// No registry or mirror host names anywhere.

var hostRE = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|org|net|io|dev|cn|eu|co|cloud|us|uk|de)\b`)

func checkNoRegistryHosts(r *repo) problems {
	var p problems
	files := append([]string{"Dockerfile", "docker-compose.yml", ".dockerignore"}, r.files("deploy")...)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue // the checks' own test data (fictional hosts)
		}
		src, err := r.read(f)
		if err != nil {
			p.add("%v", err)
			continue
		}
		for n, l := range strings.Split(src, "\n") {
			for _, h := range hostRE.FindAllString(l, -1) {
				h = strings.ToLower(h)
				ok := false
				for _, d := range allowedDomains {
					ok = ok || h == d || strings.HasSuffix(h, "."+d)
				}
				if !ok {
					p.add("%s:%d: names the host %q: deployment files must not name registries or mirrors (use the build environment's configuration)", f, n+1, h)
				}
			}
		}
	}
	return p
}

// ---------------------------------------------------------------------------------------------
// Tests.

var checks = []struct {
	name string
	fn   func(*repo) problems
}{
	{"dockerfile", checkDockerfile},
	{"dockerignore", checkDockerignore},
	{"compose", checkCompose},
	{"compose-bridge", checkComposeBridge},
	{"kubernetes", checkKubernetes},
	{"systemd", checkSystemd},
	{"config-keys", checkConfigKeys},
	{"prometheus-rule-metrics", checkRuleMetrics},
	{"nginx", checkNginx},
	{"no-registry-hosts", checkNoRegistryHosts},
}

func TestDeployFiles(t *testing.T) {
	r := newRepo(t)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, pr := range c.fn(r) {
				t.Error(pr)
			}
		})
	}
}

// TestChecksCatchBreakage breaks one thing at a time, in memory, and requires the check that
// guards it to notice.
func TestChecksCatchBreakage(t *testing.T) {
	r := newRepo(t)
	cases := []struct {
		name, file, old, new, check, want string
	}{
		// (Fictional hosts: this file must not name a real registry either.)
		{"mirror host in Dockerfile", "Dockerfile", "FROM debian:trixie-slim\n", "FROM debian:trixie-slim\nRUN echo 'deb http://apt.mirror-one.net/debian trixie main' > /etc/apt/sources.list\n", "no-registry-hosts", "apt.mirror-one.net"},
		{"module proxy named", "Dockerfile", "ARG GOPROXY\n", "ARG GOPROXY=https://goproxy.mirror-two.io\n", "no-registry-hosts", "goproxy.mirror-two.io"},
		{"not trixie", "Dockerfile", "FROM debian:trixie-slim\n", "FROM debian:bookworm-slim\n", "dockerfile", "not Debian trixie"},
		{"root user", "Dockerfile", "USER 10001:10001", "USER root", "dockerfile", "non-root USER"},
		{"no user", "Dockerfile", "USER 10001:10001", "", "dockerfile", "non-root USER"},
		{"no expose", "Dockerfile", "EXPOSE 9100/tcp", "EXPOSE 9200/tcp", "dockerfile", "EXPOSE 9100"},
		{"shell-form entrypoint", "Dockerfile", `ENTRYPOINT ["/usr/local/bin/rtpbridge"]`, `ENTRYPOINT /usr/local/bin/rtpbridge`, "dockerfile", "exec form"},
		{"ffmpeg not built", "Dockerfile", "RUN bash ffmpeg/build.sh /opt/ffmpeg", "RUN true", "dockerfile", "ffmpeg/build.sh"},
		{"ffmpeg layer after COPY . .", "Dockerfile", "COPY ffmpeg/ ffmpeg/\n", "COPY . .\n", "dockerfile", "COPY . ."},
		{"old Go", "Dockerfile", "ARG GO_VERSION=1.26.8", "ARG GO_VERSION=1.25.3", "dockerfile", "older than go.mod"},
		{"no pkg-config path", "Dockerfile", "PKG_CONFIG_PATH=/opt/ffmpeg/lib/pkgconfig", "PKG_CONFIG_PATH=/usr/lib/pkgconfig", "dockerfile", "PKG_CONFIG_PATH"},
		{"no ca-certificates", "Dockerfile", "        ca-certificates \\\n", "", "dockerfile", "ca-certificates"},
		{"healthcheck on /ready", "Dockerfile", "GET /health HTTP", "GET /ready HTTP", "dockerfile", "HEALTHCHECK"},
		{"missing config copy", "Dockerfile", "COPY deploy/docker/rtpbridge.toml /etc/rtpbridge/rtpbridge.toml", "COPY deploy/docker/missing.toml /etc/rtpbridge/rtpbridge.toml", "dockerfile", "does not exist"},
		{"dockerignore keeps bin", ".dockerignore", "\nbin\n", "\n", "dockerignore", "bin"},
		{"dockerignore drops go.sum", ".dockerignore", ".git\n", ".git\ngo.sum\n", "dockerignore", "go.sum"},
		{"short compose grace", "docker-compose.yml", "stop_grace_period: 330s", "stop_grace_period: 300s", "compose", "stop_grace_period"},
		{"no compose grace", "docker-compose.yml", "    stop_grace_period: 330s\n", "", "compose", "stop_grace_period"},
		{"longer drain than compose grace", "deploy/docker/rtpbridge.toml", "shutdown_max_wait_secs = 300", "shutdown_max_wait_secs = 600", "compose", "stop_grace_period"},
		{"published range differs", "docker-compose.yml", `"30000-30199:30000-30199/udp"`, `"30000-30099:30000-30099/udp"`, "compose-bridge", "rtp_port_range"},
		{"config range differs", "deploy/docker/rtpbridge.toml", "rtp_port_range = [30000, 30199]", "rtp_port_range = [30000, 30399]", "compose-bridge", "rtp_port_range"},
		{"more sessions than port pairs", "deploy/docker/rtpbridge.toml", "max_sessions = 100", "max_sessions = 500", "compose", "max_sessions"},
		{"media writable", "docker-compose.yml", "/var/lib/rtpbridge/media:ro", "/var/lib/rtpbridge/media", "compose", "read-only"},
		{"media_ip not the container's", "docker-compose.yml", `#   - "172.28.0.10"`, `#   - "172.28.0.11"`, "compose-bridge", "ipv4_address"},
		{"address outside the subnet", "docker-compose.yml", `#     ipv4_address: "172.28.0.10"`, `#     ipv4_address: "172.29.0.10"`, "compose-bridge", "subnet"},
		{"network not declared", "docker-compose.yml", "# networks:\n#   media:", "# networks:\n#   other:", "compose-bridge", "not declared"},
		{"control on every host interface", "docker-compose.yml", `"${RTPBRIDGE_LISTEN:-127.0.0.1:9100}"`, `"${RTPBRIDGE_LISTEN:-0.0.0.0:9100}"`, "compose", "loopback"},
		{"no --listen on the host network", "docker-compose.yml", "      - \"--listen\"\n      - \"${RTPBRIDGE_LISTEN:-127.0.0.1:9100}\"\n", "", "compose", "loopback"},
		{"no health check address", "docker-compose.yml", `"${RTPBRIDGE_LISTEN:-127.0.0.1:9100}"`, `"${RTPBRIDGE_LISTEN:-127.0.0.1:9200}"`, "compose", "HEALTHCHECK"},
		{"ports on the host network", "docker-compose.yml", "    network_mode: host\n    # host networking: end", "    network_mode: host\n    ports:\n      - \"127.0.0.1:9100:9100/tcp\"\n    # host networking: end", "compose", "ignored"},
		{"no media_ip on the host network", "docker-compose.yml", "      - \"--media-ip\"\n      - \"${RTPBRIDGE_MEDIA_IP:-127.0.0.1}\"\n", "", "compose", "--media-ip"},
		{"control published on every interface", "docker-compose.yml", `#   - "127.0.0.1:9100:9100/tcp"`, `#   - "9100:9100/tcp"`, "compose-bridge", "loopback"},
		{"control published on a wildcard", "docker-compose.yml", `#   - "127.0.0.1:9100:9100/tcp"`, `#   - "0.0.0.0:9100:9100/tcp"`, "compose-bridge", "loopback"},
		{"container listens on loopback", "deploy/docker/rtpbridge.toml", `listen = "0.0.0.0:9100"`, `listen = "127.0.0.1:9100"`, "compose-bridge", "0.0.0.0:9100"},
		{"bridge variant lost", "docker-compose.yml", "    # bridge networking: begin\n", "", "compose-bridge", "bridge networking"},
		{"bridge variant left commented", "docker-compose.yml", "#   - \"127.0.0.1:9100:9100/tcp\"", "  - \"127.0.0.1:9100:9100/tcp\"", "compose-bridge", "uncommented line"},
		{"deprecated no-new-privileges form", "docker-compose.yml", "no-new-privileges=true", "no-new-privileges:true", "compose", "deprecated"},
		{"short k8s grace", "deploy/kubernetes/statefulset.yaml", "terminationGracePeriodSeconds: 330", "terminationGracePeriodSeconds: 300", "kubernetes", "terminationGracePeriodSeconds"},
		{"longer drain than k8s grace", "deploy/kubernetes/rtpbridge.toml", "shutdown_max_wait_secs = 300", "shutdown_max_wait_secs = 900", "kubernetes", "terminationGracePeriodSeconds"},
		{"readiness on /health", "deploy/kubernetes/statefulset.yaml", "path: /ready", "path: /health", "kubernetes", "readinessProbe"},
		{"liveness on /ready", "deploy/kubernetes/statefulset.yaml", "path: /health", "path: /ready", "kubernetes", "livenessProbe"},
		{"probe port", "deploy/kubernetes/statefulset.yaml", "- name: http\n              containerPort: 9100", "- name: http\n              containerPort: 9200", "kubernetes", "port"},
		{"writable root", "deploy/kubernetes/statefulset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "kubernetes", "readOnlyRootFilesystem"},
		{"cache not on emptyDir", "deploy/kubernetes/rtpbridge.toml", `cache_dir = "/tmp/rtpbridge-cache"`, `cache_dir = "/var/cache/rtpbridge"`, "kubernetes", "cache_dir"},
		{"media_ip literal", "deploy/kubernetes/statefulset.yaml", `"--media-ip", "$(POD_IP)"`, `"--media-ip", "10.0.0.1"`, "kubernetes", "downward API"},
		{"node port overlap", "deploy/kubernetes/rtpbridge.toml", "rtp_port_range = [20000, 29999]", "rtp_port_range = [30000, 39999]", "kubernetes", "NodePort"},
		{"no PDB", "deploy/kubernetes/kustomization.yaml", "  - poddisruptionbudget.yaml\n", "", "kubernetes", "PodDisruptionBudget"},
		{"unknown key in k8s config", "deploy/kubernetes/rtpbridge.toml", "log_level = \"info\"", "log_level = \"info\"\nloglevel = \"debug\"", "config-keys", "unknown key"},
		{"wrong type", "deploy/docker/rtpbridge.toml", `listen = "0.0.0.0:9100"`, `listen = 9100`, "config-keys", "must be a string"},
		{"odd port start", "deploy/systemd/rtpbridge.toml", "rtp_port_range = [20000, 29999]", "rtp_port_range = [20001, 29999]", "config-keys", "rtp_port_range"},
		{"short systemd timeout", "deploy/systemd/rtpbridge.service", "TimeoutStopSec=330", "TimeoutStopSec=5min", "systemd", "TimeoutStopSec"},
		{"longer drain than systemd timeout", "deploy/systemd/rtpbridge.toml", "shutdown_max_wait_secs = 300", "shutdown_max_wait_secs = 3600", "systemd", "TimeoutStopSec"},
		{"systemd as root", "deploy/systemd/rtpbridge.service", "User=rtpbridge", "User=root", "systemd", "dedicated user"},
		{"systemd kill signal", "deploy/systemd/rtpbridge.service", "KillSignal=SIGTERM", "KillSignal=SIGKILL", "systemd", "KillSignal"},
		{"cache not writable", "deploy/systemd/rtpbridge.service", "CacheDirectory=rtpbridge\n", "", "systemd", "cache_dir"},
		{"rule on unknown metric", "deploy/prometheus/rtpbridge-rules.yml", "rate(rtpbridge_srtp_errors_total[5m])", "rate(rtpbridge_srtp_error_total[5m])", "prometheus-rule-metrics", "rtpbridge_srtp_error_total"},
		{"nginx without upgrade", "deploy/nginx/rtpbridge.conf", "proxy_set_header Upgrade $http_upgrade;", "", "nginx", "Upgrade"},
		{"nginx short timeout", "deploy/nginx/rtpbridge.conf", "proxy_read_timeout 3600s;", "proxy_read_timeout 60s;", "nginx", "proxy_read_timeout"},
		{"host in nginx", "deploy/nginx/rtpbridge.conf", "server 127.0.0.1:9100;", "server backend.internal.io:9100;", "no-registry-hosts", "backend.internal.io"},
	}
	byName := map[string]func(*repo) problems{}
	for _, c := range checks {
		byName[c.name] = c.fn
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := r.read(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(orig, tc.old); n != 1 {
				t.Fatalf("stale test case: %q occurs %d times in %s, want once", tc.old, n, tc.file)
			}
			broken := r.with(tc.file, strings.Replace(orig, tc.old, tc.new, 1))
			got := byName[tc.check](broken)
			for _, pr := range got {
				if strings.Contains(pr, tc.want) {
					return
				}
			}
			t.Errorf("check %s did not report %q after the change; it reported %q", tc.check, tc.want, got)
		})
	}
}

// TestPromtool validates the Prometheus configuration and rules with promtool and runs the
// rules' unit tests.
func TestPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian package prometheus): skipping promtool check rules / test rules / check config of deploy/prometheus")
	}
	r := newRepo(t)
	if errs := runPromtool(t, r, true); len(errs) > 0 {
		for _, e := range errs {
			t.Error(e)
		}
	}
	// A broken expression must fail.
	src, _ := r.read("deploy/prometheus/rtpbridge-rules.yml")
	broken := strings.Replace(src, "rate(rtpbridge_events_dropped_total[5m]) > 0", "rate(rtpbridge_events_dropped_total[5m] > 0", 1)
	if broken == src {
		t.Fatal("stale mutation for rtpbridge-rules.yml")
	}
	if errs := runPromtool(t, r.with("deploy/prometheus/rtpbridge-rules.yml", broken), false); len(errs) == 0 {
		t.Error("promtool accepted a rules file with a broken expression")
	}
	// A rule that no longer fires as its unit test expects must fail.
	changed := strings.Replace(src, "rate(rtpbridge_transcode_errors_total[5m]) > 0.1", "rate(rtpbridge_transcode_errors_total[5m]) > 100", 1)
	if errs := runPromtool(t, r.with("deploy/prometheus/rtpbridge-rules.yml", changed), false); len(errs) == 0 {
		t.Error("promtool test rules passed although an alert no longer fires")
	}
}

// runPromtool runs promtool on deploy/prometheus as r has it; logOutput logs what it printed.
func runPromtool(t *testing.T, r *repo, logOutput bool) []string {
	t.Helper()
	dir := r.materialize(t, "deploy/prometheus")
	var errs []string
	run := func(args ...string) {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if logOutput {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("promtool %s: %v\n%s", strings.Join(args, " "), err, out))
		}
	}
	var rules, tests []string
	for _, f := range r.files("deploy/prometheus") {
		b := path.Base(f)
		switch {
		case strings.HasSuffix(b, ".test.yml"):
			tests = append(tests, b)
		case strings.HasSuffix(b, "-rules.yml"):
			rules = append(rules, b)
		}
	}
	if len(rules) == 0 || len(tests) == 0 {
		return []string{"deploy/prometheus: want rule files and their unit tests"}
	}
	run(append([]string{"check", "rules"}, rules...)...)
	run(append([]string{"test", "rules"}, tests...)...)
	run("check", "config", "prometheus.yml")
	return errs
}

// TestNginxSyntax runs `nginx -t` on the example with a throw-away certificate.
func TestNginxSyntax(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			t.Skip("nginx not installed: skipping `nginx -t` of deploy/nginx/rtpbridge.conf (the static checks still ran)")
		}
		bin = "/usr/sbin/nginx"
	}
	r := newRepo(t)
	src, err := r.read("deploy/nginx/rtpbridge.conf")
	if err != nil {
		t.Fatal(err)
	}
	out, err := nginxTest(t, bin, src)
	t.Logf("nginx -t:\n%s", out)
	if err != nil {
		if bytes.Contains(out, []byte("Permission denied")) {
			t.Skipf("nginx -t cannot run as this user: %s", out)
		}
		t.Fatalf("nginx -t failed: %v", err)
	}
	// A broken copy must fail.
	if out, err := nginxTest(t, bin, strings.Replace(src, "proxy_http_version 1.1;", "proxy_http_version 1.1", 1)); err == nil {
		t.Errorf("nginx -t accepted a directive without its semicolon:\n%s", out)
	}
}

// nginxTest runs `nginx -t` on site (an http-context file) with a throw-away certificate and
// its listen sockets moved to free loopback ports: nginx -t binds them, and this way the test
// needs no privileges and cannot collide with a web server on this machine.
func nginxTest(t *testing.T, bin, site string) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	site = regexp.MustCompile(`(?m)^(\s*ssl_certificate)\s+\S+;`).ReplaceAllString(site, "${1} "+cert+";")
	site = regexp.MustCompile(`(?m)^(\s*ssl_certificate_key)\s+\S+;`).ReplaceAllString(site, "${1} "+key+";")
	listen := regexp.MustCompile(`(?m)^([ \t]*listen[ \t]+)([^\s;]+)`)
	mapped := map[string]string{}
	site = listen.ReplaceAllStringFunc(site, func(m string) string {
		sub := listen.FindStringSubmatch(m)
		if _, ok := mapped[sub[2]]; !ok {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			mapped[sub[2]] = l.Addr().String()
			l.Close()
		}
		return sub[1] + mapped[sub[2]]
	})
	sitePath := filepath.Join(dir, "rtpbridge.conf")
	if err := os.WriteFile(sitePath, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "nginx.conf")
	conf := fmt.Sprintf("pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n access_log off;\n client_body_temp_path %[1]s;\n proxy_temp_path %[1]s;\n fastcgi_temp_path %[1]s;\n uwsgi_temp_path %[1]s;\n scgi_temp_path %[1]s;\n include %s;\n}\n", dir, sitePath)
	if err := os.WriteFile(main, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(bin, "-t", "-e", "stderr", "-p", dir+"/", "-c", main).CombinedOutput()
}

func writeSelfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rtpbridge-test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestListsMatchProtocol compares the key and metric lists above with PROTOCOL.md when the
// shared specification is checked out beside the repository (as in CI).
func TestListsMatchProtocol(t *testing.T) {
	r := newRepo(t)
	spec, err := os.ReadFile(filepath.Join(r.root, "..", "shared", "PROTOCOL.md"))
	if err != nil {
		t.Skipf("PROTOCOL.md not found beside the repository (%v): lists not cross-checked", err)
	}
	section := func(from, to string) string {
		s := string(spec)
		i, j := strings.Index(s, from), strings.Index(s, to)
		if i < 0 || j < i {
			t.Fatalf("PROTOCOL.md: sections %q..%q not found", from, to)
		}
		return s[i:j]
	}
	firstCol := regexp.MustCompile("(?m)^\\|([^|]*)\\|")
	name := regexp.MustCompile("`([a-z_]+)`")
	var keys []string
	for _, m := range firstCol.FindAllStringSubmatch(section("## 26.", "## 27."), -1) {
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			keys = append(keys, n[1])
		}
	}
	var metrics []string
	for _, m := range firstCol.FindAllStringSubmatch(section("## 25.", "## 26."), -1) {
		if n := name.FindStringSubmatch(m[1]); n != nil && strings.HasPrefix(n[1], "rtpbridge_") {
			metrics = append(metrics, n[1])
		}
	}
	want := append(keys, "opus_complexity")
	if !sameSet(want, configKeys) {
		t.Errorf("configKeys %v\ndiffer from PROTOCOL.md §26 + opus_complexity %v", configKeys, want)
	}
	if !sameSet(metrics, metricNames) {
		t.Errorf("metricNames %v\ndiffer from PROTOCOL.md §25 %v", metricNames, metrics)
	}
}

func sameSet(a, b []string) bool {
	x, y := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, ",") == strings.Join(y, ",")
}

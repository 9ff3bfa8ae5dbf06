package deploy

// Small, strict parsers for the file formats the deployment checks read: a YAML subset, a TOML
// subset, Dockerfiles, systemd units and nginx configuration. go.mod has no YAML library and
// the checks must stay stdlib-only, so each parser accepts exactly the constructs these files
// use and reports anything else as an error (with file and line) instead of guessing.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ---------------------------------------------------------------------------------------------
// YAML subset: block mappings and sequences, "- key: value" items, plain / single / double
// quoted scalars, flow sequences and mappings on one line, literal and folded block scalars,
// comments and "---" document separators. No anchors, aliases, tags or multi-line flow or
// quoted scalars. Scalars stay strings; null, ~ and empty values are nil.

type yamlParser struct {
	file  string
	lines []string
	base  int // line number of lines[0] minus one
	pos   int
	// A "- key: value" item is parsed as a mapping whose first line is the text after "- ";
	// vpos/vind/vtext stand in for that line.
	vpos  int
	vind  int
	vtext string
}

func parseYAMLDocs(file, src string) ([]any, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	raw := strings.Split(src, "\n")
	for i, l := range raw {
		if ws := l[:len(l)-len(strings.TrimLeft(l, " \t"))]; strings.Contains(ws, "\t") {
			return nil, fmt.Errorf("%s:%d: tab in indentation", file, i+1)
		}
	}
	var docs []any
	start := 0
	flush := func(end int) error {
		p := &yamlParser{file: file, lines: raw[start:end], base: start, vpos: -1}
		if _, _, ok := p.peek(); !ok {
			return nil
		}
		ind, _, _ := p.peek()
		v, err := p.block(ind)
		if err != nil {
			return err
		}
		if i, _, ok := p.peek(); ok {
			return p.errf("unexpected content at indentation %d", i)
		}
		docs = append(docs, v)
		return nil
	}
	for i, l := range raw {
		t := strings.TrimRight(l, " \t")
		if t == "---" || strings.HasPrefix(t, "--- ") || t == "..." {
			if err := flush(i); err != nil {
				return nil, err
			}
			start = i + 1
		}
	}
	if err := flush(len(raw)); err != nil {
		return nil, err
	}
	return docs, nil
}

func parseYAML(file, src string) (any, error) {
	docs, err := parseYAMLDocs(file, src)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want one YAML document, found %d", file, len(docs))
	}
	return docs[0], nil
}

func (p *yamlParser) errf(format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.base+p.pos+1, fmt.Sprintf(format, a...))
}

// peek returns the indentation and comment-free text of the next significant line.
func (p *yamlParser) peek() (int, string, bool) {
	for p.pos < len(p.lines) {
		if p.pos == p.vpos {
			return p.vind, p.vtext, true
		}
		l := p.lines[p.pos]
		t := strings.TrimSpace(stripYAMLComment(l))
		if t == "" {
			p.pos++
			continue
		}
		return len(l) - len(strings.TrimLeft(l, " ")), t, true
	}
	return 0, "", false
}

func isSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

func (p *yamlParser) block(ind int) (any, error) {
	_, t, _ := p.peek()
	if isSeqItem(t) {
		return p.seq(ind)
	}
	return p.mapping(ind)
}

func (p *yamlParser) seq(ind int) (any, error) {
	out := []any{}
	for {
		i, t, ok := p.peek()
		if !ok || i < ind {
			return out, nil
		}
		if i > ind {
			return nil, p.errf("bad indentation %d in a sequence at indentation %d", i, ind)
		}
		if !isSeqItem(t) {
			return out, nil
		}
		rest := strings.TrimSpace(t[1:])
		var v any
		var err error
		switch {
		case rest == "":
			p.pos++
			if ni, _, ok := p.peek(); ok && ni > ind {
				v, err = p.block(ni)
			}
		case isSeqItem(rest):
			return nil, p.errf("nested inline sequences are not supported")
		case looksLikeMapEntry(rest):
			col := ind + (len(t) - len(rest))
			p.vpos, p.vind, p.vtext = p.pos, col, rest
			v, err = p.mapping(col)
		default:
			v, err = p.inline(rest)
			p.pos++
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func (p *yamlParser) mapping(ind int) (any, error) {
	m := map[string]any{}
	for {
		i, t, ok := p.peek()
		if !ok || i < ind || (i == ind && isSeqItem(t)) {
			return m, nil
		}
		if i > ind {
			return nil, p.errf("bad indentation %d in a mapping at indentation %d", i, ind)
		}
		key, rest, err := splitYAMLKey(t)
		if err != nil {
			return nil, p.errf("%v", err)
		}
		if _, dup := m[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		p.pos++
		var v any
		switch {
		case rest == "":
			ni, nt, ok := p.peek()
			switch {
			case ok && ni > ind:
				v, err = p.block(ni)
			case ok && ni == ind && isSeqItem(nt):
				v, err = p.seq(ind)
			}
		case rest[0] == '|' || rest[0] == '>':
			v, err = p.blockScalar(ind, rest)
		default:
			v, err = p.inline(rest)
		}
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

func (p *yamlParser) blockScalar(ind int, header string) (any, error) {
	if !regexp.MustCompile(`^[|>][-+]?$`).MatchString(header) {
		return nil, p.errf("unsupported block scalar header %q", header)
	}
	var body []string
	content := -1
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if strings.TrimSpace(l) == "" {
			body = append(body, "")
			p.pos++
			continue
		}
		li := len(l) - len(strings.TrimLeft(l, " "))
		if li <= ind {
			break
		}
		if content < 0 {
			content = li
		}
		if li < content {
			return nil, p.errf("block scalar line less indented than its first line")
		}
		body = append(body, l[content:])
		p.pos++
	}
	for len(body) > 0 && body[len(body)-1] == "" {
		body = body[:len(body)-1]
	}
	sep := "\n"
	if header[0] == '>' {
		sep = " "
	}
	s := strings.Join(body, sep)
	if !strings.HasSuffix(header, "-") {
		s += "\n"
	}
	return s, nil
}

// stripYAMLComment removes a trailing comment: '#' at the start or after whitespace, outside
// quoted scalars (a quote opens a scalar only where a scalar can start).
func stripYAMLComment(l string) string {
	var q byte
	prev := byte(' ')
	lastSig := byte(' ')
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case q == '"' && c == '\\':
			i++
		case q != 0:
			if c == q {
				if q == '\'' && i+1 < len(l) && l[i+1] == '\'' {
					i++
				} else {
					q = 0
				}
			}
		case c == '#' && (prev == ' ' || prev == '\t'):
			return l[:i]
		case (c == '"' || c == '\'') && strings.IndexByte(" :-[{,", lastSig) >= 0 && (prev == ' ' || prev == '[' || prev == '{' || prev == ','):
			q = c
		}
		prev = c
		if c != ' ' && c != '\t' {
			lastSig = c
		}
	}
	return l
}

func looksLikeMapEntry(s string) bool {
	_, _, err := splitYAMLKey(s)
	return err == nil
}

// splitYAMLKey splits "key: value" (or "key:") into key and trimmed value text.
func splitYAMLKey(t string) (string, string, error) {
	if t == "" || strings.IndexByte("[{", t[0]) >= 0 {
		return "", "", fmt.Errorf("not a mapping entry: %q", t)
	}
	if t[0] == '"' || t[0] == '\'' {
		end := quotedEnd(t)
		if end < 0 {
			return "", "", fmt.Errorf("unterminated quoted key in %q", t)
		}
		key, err := unquoteYAML(t[:end])
		if err != nil {
			return "", "", err
		}
		rest := t[end:]
		if rest == ":" || strings.HasPrefix(rest, ": ") {
			return key, strings.TrimSpace(rest[1:]), nil
		}
		return "", "", fmt.Errorf("not a mapping entry: %q", t)
	}
	for i := 0; i < len(t); i++ {
		if t[i] == ':' && (i+1 == len(t) || t[i+1] == ' ') {
			key := strings.TrimSpace(t[:i])
			if key == "" {
				break
			}
			return key, strings.TrimSpace(t[i+1:]), nil
		}
	}
	return "", "", fmt.Errorf("not a mapping entry: %q", t)
}

// quotedEnd returns the index just past the quoted scalar at the start of s, or -1.
func quotedEnd(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			if q == '\'' && i+1 < len(s) && s[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return -1
}

func unquoteYAML(s string) (string, error) {
	if s[0] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	v, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("unsupported double-quoted scalar %s", s)
	}
	return v, nil
}

func (p *yamlParser) inline(s string) (any, error) {
	v, rest, err := parseFlow(s, false)
	if err != nil {
		return nil, p.errf("%v", err)
	}
	if strings.TrimSpace(rest) != "" {
		return nil, p.errf("unexpected %q after value", rest)
	}
	return v, nil
}

// parseFlow parses one value at the start of s; inFlow means inside [] or {} where ',', ']'
// and '}' end a plain scalar.
func parseFlow(s string, inFlow bool) (any, string, error) {
	s = strings.TrimLeft(s, " ")
	if s == "" {
		return nil, "", nil
	}
	switch s[0] {
	case '&', '*', '!', '%', '@', '`':
		return nil, "", fmt.Errorf("unsupported YAML construct %q", s)
	case '"', '\'':
		end := quotedEnd(s)
		if end < 0 {
			return nil, "", fmt.Errorf("unterminated or multi-line quoted scalar %q", s)
		}
		v, err := unquoteYAML(s[:end])
		return v, s[end:], err
	case '[':
		out := []any{}
		s = strings.TrimLeft(s[1:], " ")
		if strings.HasPrefix(s, "]") {
			return out, s[1:], nil
		}
		for {
			v, rest, err := parseFlow(s, true)
			if err != nil {
				return nil, "", err
			}
			out = append(out, v)
			rest = strings.TrimLeft(rest, " ")
			switch {
			case strings.HasPrefix(rest, ","):
				s = rest[1:]
			case strings.HasPrefix(rest, "]"):
				return out, rest[1:], nil
			default:
				return nil, "", fmt.Errorf("unterminated flow sequence near %q", rest)
			}
		}
	case '{':
		out := map[string]any{}
		s = strings.TrimLeft(s[1:], " ")
		if strings.HasPrefix(s, "}") {
			return out, s[1:], nil
		}
		for {
			k, rest, err := parseFlow(s, true)
			if err != nil {
				return nil, "", err
			}
			ks, ok := k.(string)
			rest = strings.TrimLeft(rest, " ")
			if !ok || !strings.HasPrefix(rest, ":") {
				return nil, "", fmt.Errorf("bad flow mapping entry near %q", s)
			}
			v, rest, err := parseFlow(rest[1:], true)
			if err != nil {
				return nil, "", err
			}
			out[ks] = v
			rest = strings.TrimLeft(rest, " ")
			switch {
			case strings.HasPrefix(rest, ","):
				s = rest[1:]
			case strings.HasPrefix(rest, "}"):
				return out, rest[1:], nil
			default:
				return nil, "", fmt.Errorf("unterminated flow mapping near %q", rest)
			}
		}
	}
	end := len(s)
	if inFlow {
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(",]}", s[i]) >= 0 || (s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ')) {
				end = i
				break
			}
		}
	}
	v := strings.TrimSpace(s[:end])
	if v == "~" || v == "null" {
		return nil, s[end:], nil
	}
	return v, s[end:], nil
}

// yget walks mappings by key; nil when a step is missing or not a mapping.
func yget(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func ystr(v any, path ...string) string {
	s, _ := yget(v, path...).(string)
	return s
}

func ylist(v any, path ...string) []any {
	l, _ := yget(v, path...).([]any)
	return l
}

func ymap(v any, path ...string) map[string]any {
	m, _ := yget(v, path...).(map[string]any)
	return m
}

// ---------------------------------------------------------------------------------------------
// TOML subset: top-level `key = value` lines with basic or literal strings, integers, booleans
// and one-line arrays of those. Tables are errors: every rtpbridge key is top-level.

func parseTOML(file, src string) (map[string]any, error) {
	out := map[string]any{}
	for n, l := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", file, n+1, fmt.Sprintf(format, a...))
		}
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			return nil, errf("tables are not allowed in an rtpbridge config: %q", t)
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, errf("want key = value, got %q", t)
		}
		key := strings.TrimSpace(k)
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(key) {
			return nil, errf("unsupported key %q (only bare keys)", key)
		}
		if _, dup := out[key]; dup {
			return nil, errf("duplicate key %q", key)
		}
		val, rest, err := tomlValue(strings.TrimSpace(v))
		if err != nil {
			return nil, errf("%s: %v", key, err)
		}
		if rest = strings.TrimSpace(rest); rest != "" && rest[0] != '#' {
			return nil, errf("%s: unexpected %q after the value", key, rest)
		}
		out[key] = val
	}
	return out, nil
}

func tomlValue(s string) (any, string, error) {
	switch {
	case s == "":
		return nil, "", fmt.Errorf("missing value")
	case s[0] == '"':
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				v, err := strconv.Unquote(s[:i+1])
				return v, s[i+1:], err
			}
		}
		return nil, "", fmt.Errorf("unterminated string (multi-line strings are not supported)")
	case s[0] == '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return nil, "", fmt.Errorf("unterminated literal string")
		}
		return s[1 : end+1], s[end+2:], nil
	case s[0] == '[':
		out := []any{}
		s = strings.TrimSpace(s[1:])
		for {
			if strings.HasPrefix(s, "]") {
				return out, s[1:], nil
			}
			v, rest, err := tomlValue(s)
			if err != nil {
				return nil, "", err
			}
			out = append(out, v)
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, ",") {
				rest = strings.TrimSpace(rest[1:])
			} else if !strings.HasPrefix(rest, "]") {
				return nil, "", fmt.Errorf("unterminated array (multi-line arrays are not supported)")
			}
			s = rest
		}
	}
	end := strings.IndexAny(s, " \t,]#")
	if end < 0 {
		end = len(s)
	}
	word := s[:end]
	switch word {
	case "true":
		return true, s[end:], nil
	case "false":
		return false, s[end:], nil
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(word, "_", ""), 0, 64)
	if err != nil {
		return nil, "", fmt.Errorf("unsupported value %q (strings, integers, booleans, arrays only)", word)
	}
	return n, s[end:], nil
}

// ---------------------------------------------------------------------------------------------
// Dockerfile: instructions with continuation lines joined and comment lines dropped, grouped
// into stages.

type dinst struct {
	line int
	cmd  string // upper case
	args string
}

type dstage struct {
	image, alias string
	insts        []dinst
}

type dockerfile struct {
	globalArgs map[string]string // ARGs before the first FROM, with defaults
	stages     []dstage
}

func parseDockerfile(src string) (*dockerfile, error) {
	df := &dockerfile{globalArgs: map[string]string{}}
	var cur strings.Builder
	startLine := 0
	var insts []dinst
	for n, l := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() > 0) {
			continue
		}
		if t == "" {
			continue
		}
		if cur.Len() == 0 {
			startLine = n + 1
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(t)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		insts = append(insts, dinst{line: startLine, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("Dockerfile ends inside a continued line")
	}
	for _, in := range insts {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			var img, alias string
			for i := 0; i < len(f); i++ {
				if strings.HasPrefix(f[i], "--") {
					continue
				}
				if img == "" {
					img = f[i]
				} else if strings.EqualFold(f[i], "AS") && i+1 < len(f) {
					alias = f[i+1]
					break
				}
			}
			img = expandArgs(img, df.globalArgs)
			df.stages = append(df.stages, dstage{image: img, alias: alias})
		case len(df.stages) == 0:
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			k, v, _ := strings.Cut(in.args, "=")
			df.globalArgs[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		default:
			s := &df.stages[len(df.stages)-1]
			s.insts = append(s.insts, in)
		}
	}
	return df, nil
}

// expandArgs substitutes $NAME and ${NAME} from vars (build args in FROM lines).
func expandArgs(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		return vars[name]
	})
}

// execForm decodes a JSON-array (exec form) argument; ok is false for shell form.
func execForm(args string) ([]string, bool) {
	var v []string
	if !strings.HasPrefix(strings.TrimSpace(args), "[") || json.Unmarshal([]byte(args), &v) != nil {
		return nil, false
	}
	return v, true
}

// ---------------------------------------------------------------------------------------------
// systemd unit files: sections of key=value lists (a key may repeat).

func parseUnit(file, src string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	sec := ""
	var cont strings.Builder
	for n, l := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(l)
		if cont.Len() == 0 && (t == "" || t[0] == '#' || t[0] == ';') {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cont.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cont.WriteString(t)
		t = cont.String()
		cont.Reset()
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			sec = t[1 : len(t)-1]
			if out[sec] == nil {
				out[sec] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || sec == "" {
			return nil, fmt.Errorf("%s:%d: want Key=value inside a [Section], got %q", file, n+1, t)
		}
		out[sec][strings.TrimSpace(k)] = append(out[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return out, nil
}

// systemdSeconds parses a systemd time span ("330", "330s", "5min 30s", "infinity").
func systemdSeconds(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 1e18, nil
	}
	units := map[string]float64{
		"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
		"ms": 1e-3, "msec": 1e-3, "us": 1e-6, "usec": 1e-6,
		"m": 60, "min": 60, "minute": 60, "minutes": 60,
		"h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
		"d": 86400, "day": 86400, "days": 86400,
	}
	re := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)`)
	total, seen := 0.0, false
	for s != "" {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		mult, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("unknown time unit %q", m[2])
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		total += v * mult
		seen = true
		s = strings.TrimSpace(s[len(m[0]):])
	}
	if !seen {
		return 0, fmt.Errorf("empty time span")
	}
	return total, nil
}

// ---------------------------------------------------------------------------------------------
// nginx configuration: directives and blocks.

type ngx struct {
	name     string
	args     []string
	children []*ngx
	block    bool
}

func parseNginx(src string) (*ngx, error) {
	var toks []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, string(c))
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated quote")
			}
			toks = append(toks, src[i+1:j])
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\n\r;{}", rune(src[j])) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		}
	}
	root := &ngx{block: true}
	stack := []*ngx{root}
	var words []string
	for _, t := range toks {
		top := stack[len(stack)-1]
		switch t {
		case ";":
			if len(words) == 0 {
				return nil, fmt.Errorf("empty directive")
			}
			top.children = append(top.children, &ngx{name: words[0], args: words[1:]})
			words = nil
		case "{":
			if len(words) == 0 {
				return nil, fmt.Errorf("block without a name")
			}
			b := &ngx{name: words[0], args: words[1:], block: true}
			top.children = append(top.children, b)
			stack = append(stack, b)
			words = nil
		case "}":
			if len(words) != 0 || len(stack) == 1 {
				return nil, fmt.Errorf("unbalanced }")
			}
			stack = stack[:len(stack)-1]
		default:
			words = append(words, t)
		}
	}
	if len(stack) != 1 || len(words) != 0 {
		return nil, fmt.Errorf("unterminated block or directive")
	}
	return root, nil
}

func (n *ngx) all(name string) []*ngx {
	var out []*ngx
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// nginxDuration parses nginx time values ("60", "60s", "5m", "1h").
func nginxDuration(s string) (time.Duration, error) {
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	return time.ParseDuration(s)
}

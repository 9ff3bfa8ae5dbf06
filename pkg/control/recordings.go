package control

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/recording"
)

// RecordingsAPI serves /recordings (PROTOCOL.md §24): the listing, streamed downloads and
// deletes, all confined to recording_dir by recording.Dir.
type RecordingsAPI struct {
	dir         *recording.Dir
	maxDownload int64
	log         *slog.Logger
}

// NewRecordingsAPI serves the recordings in dir; downloads larger than maxDownload bytes
// (max_recording_download_bytes) are refused with 413.
func NewRecordingsAPI(dir *recording.Dir, maxDownload int64, log *slog.Logger) *RecordingsAPI {
	return &RecordingsAPI{dir: dir, maxDownload: maxDownload, log: log}
}

// downloadChunk is how much of a file is in memory at once while it is sent.
const downloadChunk = 64 << 10

// chunkWriteTimeout bounds the wait for the client to take one chunk: a download as a whole may
// take as long as the client needs, a stalled client is dropped.
const chunkWriteTimeout = 30 * time.Second

// ServeHTTP implements http.Handler for "/recordings", "/recordings/" and "/recordings/{path}".
func (a *RecordingsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/recordings")
	if rest == "" || rest == "/" {
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, errorBody("method not allowed"))
			return
		}
		a.list(w, r)
		return
	}
	// r.URL.Path is already percent-decoded: %2e%2e arrives as "..", and recording.Dir refuses
	// whatever resolves outside.
	name := strings.TrimPrefix(rest, "/")
	switch r.Method {
	case http.MethodGet:
		a.download(w, r, name)
	case http.MethodDelete:
		a.delete(w, name)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method not allowed"))
	}
}

// recordingList is the body of GET /recordings.
type recordingList struct {
	Recordings []string `json:"recordings"`
	Total      int      `json:"total"`
	Skip       int      `json:"skip"`
	Limit      int      `json:"limit"`
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (a *RecordingsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r.URL.RawQuery)
	skip := queryInt(q, "skip", 0)
	limit := min(queryInt(q, "limit", defaultListLimit), maxListLimit)
	all, err := a.dir.List()
	if err != nil {
		a.log.Warn("listing recordings failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody("failed to read recording directory"))
		return
	}
	matched := all[:0]
	if prefix, ok := q["startsWith"]; ok {
		for _, p := range all {
			if strings.HasPrefix(p, prefix) {
				matched = append(matched, p)
			}
		}
	} else {
		matched = all
	}
	page := []string{}
	if skip < len(matched) {
		page = matched[skip:min(len(matched), skip+limit)]
	}
	writePrettyJSON(w, http.StatusOK, recordingList{Recordings: page, Total: len(matched), Skip: skip, Limit: limit})
}

// parseQuery decodes a query string leniently: a parameter that does not decode is ignored
// (its default applies), as is everything after its first value.
func parseQuery(raw string) map[string]string {
	out := make(map[string]string)
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "" {
			continue
		}
		if _, dup := out[k]; !dup {
			out[k] = v
		}
	}
	return out
}

// queryInt is a non-negative integer parameter, def when absent or unparsable.
func queryInt(q map[string]string, key string, def int) int {
	v, ok := q[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return def
	}
	return n
}

// lookupError answers the errors of recording.Dir's Open and Remove.
func lookupError(w http.ResponseWriter, err error) bool {
	switch {
	case errors.Is(err, recording.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody("recording not found"))
	case errors.Is(err, recording.ErrOutside):
		writeJSON(w, http.StatusForbidden, errorBody("path outside recording directory"))
	case errors.Is(err, recording.ErrDirUnavailable):
		writeJSON(w, http.StatusInternalServerError, errorBody("recording directory not accessible"))
	default:
		return false
	}
	return true
}

// contentType is the download's media type: PCAP as §24 says, and the decoded formats of §33
// as what they are.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".wav"):
		return "audio/wav"
	case strings.HasSuffix(name, ".ogg"):
		return "audio/ogg"
	default:
		return "application/vnd.tcpdump.pcap"
	}
}

// download streams the file in downloadChunk pieces; memory does not grow with its size.
func (a *RecordingsAPI) download(w http.ResponseWriter, r *http.Request, name string) {
	f, err := a.dir.Open(name)
	if err != nil {
		if !lookupError(w, err) {
			writeJSON(w, http.StatusNotFound, errorBody("recording not found"))
		}
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody("recording not found"))
		return
	}
	size := st.Size()
	if a.maxDownload > 0 && size > a.maxDownload {
		writeJSON(w, http.StatusRequestEntityTooLarge,
			errorBody(fmt.Sprintf("recording too large (%d bytes, max %d)", size, a.maxDownload)))
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	buf := make([]byte, downloadChunk)
	// Exactly the size announced, even if a recording still being written grows meanwhile.
	src := io.LimitReader(f, size)
	for sent := int64(0); sent < size; {
		n, err := src.Read(buf)
		if n > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(chunkWriteTimeout))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client went away
			}
			sent += int64(n)
		}
		if err != nil {
			if err != io.EOF || sent < size {
				a.log.Warn("recording download cut short", "file", name, "sent", sent, "size", size, "err", err)
			}
			return
		}
	}
}

func (a *RecordingsAPI) delete(w http.ResponseWriter, name string) {
	if err := a.dir.Remove(name); err != nil {
		if !lookupError(w, err) {
			a.log.Warn("deleting recording failed", "file", name, "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody("failed to delete recording"))
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

package control

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// routes builds the plain HTTP API of PROTOCOL.md §24 and §29. Every request gets an answer: a
// known route with another method is 405, an unknown path 404 (D2).
func (s *Server) routes() http.Handler {
	get := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				writeJSON(w, http.StatusMethodNotAllowed, errorBody("method not allowed"))
				return
			}
			h(w, r)
		}
	}
	metricsHandler := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case path == "/health":
			get(func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			})(w, r)
		case path == "/ready":
			get(func(w http.ResponseWriter, _ *http.Request) {
				if s.mgr.Draining() {
					writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
					return
				}
				writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			})(w, r)
		case path == "/metrics":
			get(metricsHandler.ServeHTTP)(w, r)
		case path == "/sessions" || path == "/sessions/":
			get(s.listSessions)(w, r)
		case strings.HasPrefix(path, "/sessions/"):
			get(s.getSession)(w, r)
		case path == "/recordings" || strings.HasPrefix(path, "/recordings/"):
			if s.opts.RecordingsHandler != nil {
				s.opts.RecordingsHandler.ServeHTTP(w, r)
				return
			}
			writeJSON(w, http.StatusNotFound, errorBody("not found"))
		default:
			writeJSON(w, http.StatusNotFound, errorBody("not found"))
		}
	})
}

func (s *Server) listSessions(w http.ResponseWriter, _ *http.Request) {
	writePrettyJSON(w, http.StatusOK, s.mgr.List())
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(strings.TrimPrefix(r.URL.Path, "/sessions/"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid session ID"))
		return
	}
	sess := s.mgr.Get(id)
	if sess == nil {
		writeJSON(w, http.StatusNotFound, errorBody("session not found"))
		return
	}
	info, err := sess.Info()
	if err != nil {
		// Ended meanwhile, or did not answer within the command timeout (§24).
		writeJSON(w, http.StatusNotFound, errorBody("session not found"))
		return
	}
	writePrettyJSON(w, http.StatusOK, info)
}

func errorBody(msg string) map[string]string { return map[string]string{"error": msg} }

// writeJSON writes a compact JSON body with the headers §24 promises.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"serialize error"}`)
	}
	writeBody(w, status, b)
}

// writePrettyJSON is writeJSON with indentation, for session and recording bodies.
func writePrettyJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"serialize error"}`)
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

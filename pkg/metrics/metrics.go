// Package metrics defines rtpbridge's Prometheus collectors (PROTOCOL.md §25) and the /metrics
// handler. Each server owns one Metrics value with its own registry, so several servers can run
// in one process (tests) without sharing counters.
package metrics

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Metrics holds every rtpbridge_* collector. The zero value is not usable; call New.
type Metrics struct {
	registry *prometheus.Registry

	SessionsTotal    prometheus.Counter
	SessionsActive   prometheus.Gauge
	EndpointsTotal   prometheus.Counter
	EndpointsActive  prometheus.Gauge
	PacketsRouted    prometheus.Counter
	PacketsRecorded  prometheus.Counter
	RecordingsActive prometheus.Gauge
	SRTPErrors       prometheus.Counter
	DTMFEvents       prometheus.Counter
	TranscodeErrors  prometheus.Counter
	EventsDropped    prometheus.Counter

	// PacketsInvalid is an extension beyond PROTOCOL.md §25: inbound media datagrams dropped as
	// malformed (garbage, truncated, oversized, wrong version), so an operator can see them.
	PacketsInvalid prometheus.Counter
	// PacketsRejected is PROTOCOL.md §0 D24's counter: well-formed inbound packets dropped for
	// their source (not the latched one, or not allowed to latch) or payload type.
	PacketsRejected prometheus.Counter
}

// New creates the collectors and registers them, together with the Go runtime and process
// collectors operators expect, on a fresh registry.
func New() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	// HELP texts are PROTOCOL.md §25's, which end with a period.
	m := &Metrics{
		registry:         prometheus.NewRegistry(),
		SessionsTotal:    counter("rtpbridge_sessions_total", "Total sessions created."),
		SessionsActive:   gauge("rtpbridge_sessions_active", "Currently active sessions."),
		EndpointsTotal:   counter("rtpbridge_endpoints_total", "Total endpoints created."),
		EndpointsActive:  gauge("rtpbridge_endpoints_active", "Currently active endpoints."),
		PacketsRouted:    counter("rtpbridge_packets_routed_total", "Total packets routed between endpoints."),
		PacketsRecorded:  counter("rtpbridge_packets_recorded_total", "Total packets recorded to PCAP."),
		RecordingsActive: gauge("rtpbridge_recordings_active", "Currently active recordings."),
		SRTPErrors:       counter("rtpbridge_srtp_errors_total", "SRTP authentication or replay errors."),
		DTMFEvents:       counter("rtpbridge_dtmf_events_total", "DTMF events detected."),
		TranscodeErrors:  counter("rtpbridge_transcode_errors_total", "Transcode errors (decode or encode failures)."),
		EventsDropped:    counter("rtpbridge_events_dropped_total", "Events dropped due to channel backpressure."),
		PacketsInvalid:   counter("rtpbridge_packets_invalid_total", "Inbound media datagrams dropped as malformed."),
		PacketsRejected: counter("rtpbridge_packets_rejected_total",
			"Inbound media packets dropped for their source or payload type."),
	}
	m.registry.MustRegister(
		m.SessionsTotal, m.SessionsActive, m.EndpointsTotal, m.EndpointsActive,
		m.PacketsRouted, m.PacketsRecorded, m.RecordingsActive, m.SRTPErrors,
		m.DTMFEvents, m.TranscodeErrors, m.EventsDropped, m.PacketsInvalid, m.PacketsRejected,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry exposes the registry, for tests and for embedding extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// textContentType is what PROTOCOL.md §24 promises for the default (non-OpenMetrics) answer. The
// client library appends an `escaping=` parameter that older scrapers do not expect; our metric
// names need no escaping, so it is left out.
const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry with content negotiation (D22): Prometheus text 0.0.4 by default,
// OpenMetrics when the scraper asks for it. The body is encoded into a buffer first so a failure
// yields a clean 500 instead of a truncated 200.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		families, err := m.registry.Gather()
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		var buf bytes.Buffer
		if err == nil {
			enc := expfmt.NewEncoder(&buf, format)
			for _, mf := range families {
				if err = enc.Encode(mf); err != nil {
					break
				}
			}
			if closer, ok := enc.(expfmt.Closer); ok && err == nil {
				err = closer.Close()
			}
		}
		if err != nil {
			writeRaw(w, http.StatusInternalServerError, "application/json", []byte(`{"error":"metrics encoding failed"}`))
			return
		}
		contentType := string(format)
		if format.FormatType() == expfmt.TypeTextPlain {
			contentType = textContentType
		}
		writeRaw(w, http.StatusOK, contentType, buf.Bytes())
	})
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Package rtpstats keeps RTP reception and transmission statistics and
// speaks the RTCP needed for them (PROTOCOL.md §14, §21), following RFC 3550:
// sequence validation and loss (A.1, A.3), interarrival jitter (A.8), sender
// and receiver reports (§6.4) and round-trip time from LSR/DLSR (§6.4.1).
//
// A Receiver tracks one inbound stream, a Sender one outbound stream. Neither
// locks: both belong to the goroutine that owns the endpoint (the session
// loop), which also reads them for the stats event. The per-packet methods
// (Receiver.Update, Sender.OnSent) and the report builders (BuildSR,
// BuildRR) allocate nothing; parsing inbound RTCP (ParseRTCP, every few
// seconds per leg) uses pion/rtcp and may allocate.
package rtpstats

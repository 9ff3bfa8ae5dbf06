package endpoint

// NewOutStreamSSRC starts a stream with a given SSRC, for transports that choose it themselves
// and signal it in SDP (a WebRTC sender's a=ssrc): the packets the session numbers must carry
// the SSRC the peer was told about. Sequence and timestamp still start at random values.
func NewOutStreamSSRC(ssrc, clock uint32) *OutStream {
	return &OutStream{ssrc: ssrc, clock: clock}
}

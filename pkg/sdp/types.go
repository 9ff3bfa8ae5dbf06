package sdp

// Direction is an SDP direction attribute (RFC 3264 §5.1). It is the SDP
// meaning, seen from the author of the SDP; the session-side routing direction
// of PROTOCOL.md §4 is a separate thing and never changes these attributes.
type Direction string

// The four direction attributes of RFC 4566 §6.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Valid reports whether d is one of the four direction attributes.
func (d Direction) Valid() bool {
	switch d {
	case SendRecv, SendOnly, RecvOnly, Inactive:
		return true
	}
	return false
}

// Mirror returns the direction an answer takes for an offer with direction d
// (RFC 3264 §6.1): sendonly ↔ recvonly, sendrecv and inactive unchanged.
// Anything invalid is treated as the default sendrecv.
func (d Direction) Mirror() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Profile is the transport protocol of an m= line (RFC 4566 §5.14).
type Profile string

// Transport profiles we read. AVPF (RFC 4585) differs from AVP only by RTCP
// feedback, which we neither send nor need, so AVPF offers are served too.
const (
	ProfileAVP    Profile = "RTP/AVP"
	ProfileAVPF   Profile = "RTP/AVPF"
	ProfileSAVP   Profile = "RTP/SAVP"
	ProfileSAVPF  Profile = "RTP/SAVPF"
	ProfileDTLS   Profile = "UDP/TLS/RTP/SAVP"
	ProfileWebRTC Profile = "UDP/TLS/RTP/SAVPF"
)

// knownProfile reports whether p is one of the profiles above.
func knownProfile(p Profile) bool {
	switch p {
	case ProfileAVP, ProfileAVPF, ProfileSAVP, ProfileSAVPF, ProfileDTLS, ProfileWebRTC:
		return true
	}
	return false
}

// Secure reports whether p is an SRTP profile (SAVP family, RFC 3711 §12).
func (p Profile) Secure() bool {
	switch p {
	case ProfileSAVP, ProfileSAVPF, ProfileDTLS, ProfileWebRTC:
		return true
	}
	return false
}

// Feedback reports whether p carries RTCP feedback (the AVPF family, RFC 4585).
func (p Profile) Feedback() bool {
	switch p {
	case ProfileAVPF, ProfileSAVPF, ProfileWebRTC:
		return true
	}
	return false
}

// DTLS reports whether p is keyed by DTLS-SRTP (RFC 5764), which plain RTP
// legs cannot do.
func (p Profile) DTLS() bool { return p == ProfileDTLS || p == ProfileWebRTC }

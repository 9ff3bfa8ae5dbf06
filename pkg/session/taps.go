package session

import (
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// AudioTap receives one leg's inbound audio, decoded: in-band DTMF and fax tone detection,
// decoded recordings, voice activity. It is fed by the same per-source decode that transcoding
// and mixing use, so a tap on a leg costs at most that one decode (and a resampler shared by
// every consumer at the tap's rate), never a decoder of its own.
//
// Audio runs on the session loop under the session's lock, so it must not block; pcm is only
// valid during the call.
type AudioTap interface {
	// TapRate is the rate, in Hz, the tap wants its audio at.
	TapRate() int
	// Audio takes the leg's next piece of audio: a continuous stream at TapRate() (gaps in
	// the leg's RTP are concealed), in pieces of any length (one per packet or frame).
	Audio(pcm []int16, now time.Time)
}

// PacketTap sees a leg's RTP packets as they are after decryption and before encryption:
// what arrived from the peer (inbound, after the leg accepted it) and what the session sent to
// it (telephone-event packets included). It is PCAP recording's view.
//
// Packet runs under the session's lock, on a media worker or the session loop: it must not
// block or keep h or payload past the call.
type PacketTap interface {
	Packet(from endpoint.Leg, inbound bool, h *rtpnet.RTPHeader, payload []byte, now time.Time)
}

// RTCPTap is implemented by packet taps that also want RTCP: the compounds a leg received
// (inbound, decrypted) and the reports the leg sent (outbound, before encryption). Only legs
// that report RTCP to the session have any (plain RTP).
type RTCPTap interface {
	RTCP(from endpoint.Leg, inbound bool, b []byte, now time.Time)
}

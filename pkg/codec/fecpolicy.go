package codec

import "math"

// LossProtection is how an Opus encoder guards against packet loss: libopus's in-band FEC
// (LBRR, a coarser copy of each frame carried in the next packet, which the receiver decodes
// when the frame itself is lost) and its expected loss in percent, which sizes that copy and
// also makes the primary coding lean less on earlier frames. Both cost quality on a path that
// loses nothing (measured on speech, SNR against the input: about 1 dB for FEC at 1 %, more
// as the expected loss rises). The zero value is libopus's default: no FEC, no expected loss.
type LossProtection struct {
	FEC          bool
	ExpectedLoss int // percent, 0-100
}

// Thresholds of FECPolicy, in percent of packets lost.
const (
	// FECOnLoss is the loss estimate at which protection starts: a receiver report of 3 lost
	// packets in 256 (1.2 %) or more.
	FECOnLoss = 1.0
	// FECOffLoss is the estimate below which protection stops again.
	FECOffLoss = 0.5
	// MaxExpectedLoss caps the expected loss told to libopus: its FEC decision weighs loss up
	// to 25 % and no further, while the cost to the primary signal keeps rising.
	MaxExpectedLoss = 25
)

// FECPolicy turns the packet loss a destination reports into the LossProtection of the Opus
// encoder that feeds it, so that a clean path gets libopus's full quality and a lossy one
// gets in-band FEC. It is fed the fraction lost of each RTCP receiver report block on our
// stream (RFC 3550 §6.4.1: packets lost over the last report interval, 5 s for most peers, in
// units of 1/256), and keeps an estimate of the loss in percent:
//
//   - a report above the estimate raises it to that report at once (protection starts with
//     the first report that shows loss);
//   - a lower report halves it, but not below that report (a burst is not forgotten after
//     one clean interval: from 10 % it takes 5 clean reports, 25 s at 5 s, to stop).
//
// Protection is on from an estimate of FECOnLoss and off again below FECOffLoss. While on, the
// expected loss is the estimate rounded up (at most MaxExpectedLoss), whether the destination
// decodes FEC or not, and FEC is on when the destination asked for it (useinbandfec=1 in its
// Opus fmtp, RFC 7587 §6.1; without it FEC would cost bits the receiver ignores). Without
// reports (a peer that sends no RTCP) protection stays off.
//
// The zero value is ready: no loss known. It allocates nothing.
type FECPolicy struct {
	loss float64 // estimate, percent
	on   bool
}

// Report takes the fraction lost (0-255, in 1/256) of a receiver report on our stream.
func (p *FECPolicy) Report(fractionLost uint8) {
	r := float64(fractionLost) * 100 / 256
	if r >= p.loss {
		p.loss = r
	} else {
		p.loss = max(r, p.loss/2)
	}
	switch {
	case p.loss >= FECOnLoss:
		p.on = true
	case p.loss < FECOffLoss:
		p.on = false
	}
}

// Loss returns the loss estimate in percent.
func (p *FECPolicy) Loss() float64 { return p.loss }

// Protection returns the settings for the destination's Opus encoder; peerFEC is whether the
// destination asked for in-band FEC.
func (p *FECPolicy) Protection(peerFEC bool) LossProtection {
	if !p.on {
		return LossProtection{}
	}
	return LossProtection{
		FEC:          peerFEC,
		ExpectedLoss: min(int(math.Ceil(p.loss)), MaxExpectedLoss),
	}
}

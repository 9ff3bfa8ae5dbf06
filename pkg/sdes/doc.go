// Package sdes implements SDES-keyed SRTP for plain RTP legs (PROTOCOL §15,
// §29; issue 5): the a=crypto attribute of RFC 4568 and the SRTP/SRTCP
// contexts of RFC 3711 / RFC 7714 built on pion/srtp, with replay
// protection and the dual-context live rekey of PROTOCOL §15.
//
// Signalling side (pkg/sdp hands over and takes back the raw attribute
// value, the text after "a=crypto:"):
//
//   - our offer: OfferCryptos, format each with Crypto.String;
//   - an offer from the peer: SelectAnswer picks the line to accept,
//     AnswerFor makes our own key for the answer;
//   - the peer's answer to our offer: MatchAnswer pairs it with our line.
//
// Media side: a Transport per leg. ProtectRTP/ProtectRTCP encrypt with our
// key, UnprotectRTP/UnprotectRTCP decrypt with the peer's. UnprotectRTP's
// output is the one place where clear media exists: recording and VAD taps
// read it there.
//
// Rekey: Transport.Rekey installs a new send key at once;
// Transport.SetPendingRemote installs the peer's new key as pending for
// SwitchOver, tried first and promoted on its first success, forced at the
// deadline; SRTP and SRTCP switch separately.
package sdes

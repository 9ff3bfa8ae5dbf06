package webrtc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/ice/v4"
	psdp "github.com/pion/sdp/v3"
)

// Limits on what a peer's WebRTC SDP may hold before pion sees it; far above what browsers send
// (one audio section, a handful of candidates).
const (
	maxCandidates = 64
	maxSections   = 16
)

// checkRemote validates a peer's WebRTC SDP (an offer, or an answer to our offer) before pion
// sees it, so bad input gets an error naming the problem instead of a half-made connection:
// an audio section with a DTLS-SRTP profile, a fingerprint, ICE credentials, a DTLS role we can
// take, ICE options we understand and candidates that parse (PROTOCOL.md §13.5).
func checkRemote(raw []byte, offer bool) error {
	var sd psdp.SessionDescription
	if err := sd.UnmarshalString(string(raw)); err != nil {
		return fmt.Errorf("invalid WebRTC SDP: %w", err)
	}
	if len(sd.MediaDescriptions) > maxSections {
		return fmt.Errorf("WebRTC SDP has %d media sections, at most %d are accepted", len(sd.MediaDescriptions), maxSections)
	}
	var audio *psdp.MediaDescription
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			audio = md
			break
		}
	}
	if audio == nil {
		return errors.New("WebRTC SDP has no audio section (m=audio with a non-zero port)")
	}
	proto := strings.Join(audio.MediaName.Protos, "/")
	if proto != "UDP/TLS/RTP/SAVPF" && proto != "UDP/TLS/RTP/SAVP" {
		return fmt.Errorf("WebRTC audio section uses transport %q; only UDP/TLS/RTP/SAVPF (DTLS-SRTP) is supported", proto)
	}
	get := func(key string) (string, bool) {
		if v, ok := audio.Attribute(key); ok {
			return v, true
		}
		return sd.Attribute(key)
	}
	fp, ok := get("fingerprint")
	if !ok {
		return errors.New("WebRTC SDP has no a=fingerprint: DTLS-SRTP needs the peer's certificate fingerprint")
	}
	if parts := strings.Fields(fp); len(parts) != 2 || !knownHash(parts[0]) {
		return fmt.Errorf("WebRTC SDP has an unusable a=fingerprint %q (want sha-256, sha-384, sha-512 or sha-1 and a hex digest)", fp)
	}
	if v, ok := get("ice-ufrag"); !ok || v == "" {
		return errors.New("WebRTC SDP has no a=ice-ufrag")
	}
	if v, ok := get("ice-pwd"); !ok || v == "" {
		return errors.New("WebRTC SDP has no a=ice-pwd")
	}
	if setup, ok := get("setup"); ok {
		switch {
		case setup == "actpass" && offer, setup == "active", setup == "passive":
		case setup == "actpass":
			return errors.New("unsupported DTLS setup role \"actpass\" in an answer: it must be active or passive")
		default:
			return fmt.Errorf("unsupported DTLS setup role %q (want actpass, active or passive)", setup)
		}
	}
	for _, attrs := range [][]psdp.Attribute{sd.Attributes, audio.Attributes} {
		for _, a := range attrs {
			if a.Key != "ice-options" {
				continue
			}
			for _, opt := range strings.Fields(a.Value) {
				switch opt {
				case "trickle", "ice2", "renomination":
				default:
					return fmt.Errorf("unsupported ICE option %q (supported: trickle, ice2, renomination)", opt)
				}
			}
		}
	}
	n := 0
	for _, a := range audio.Attributes {
		if a.Key != "candidate" {
			continue
		}
		if n++; n > maxCandidates {
			return fmt.Errorf("WebRTC SDP has more than %d ICE candidates", maxCandidates)
		}
		if _, err := ice.UnmarshalCandidate(a.Value); err != nil {
			return fmt.Errorf("invalid ICE candidate %q: %w", clip(a.Value), err)
		}
	}
	return nil
}

func knownHash(alg string) bool {
	switch strings.ToLower(alg) {
	case "sha-1", "sha-224", "sha-256", "sha-384", "sha-512":
		return true
	}
	return false
}

// clip keeps error texts short whatever a peer sent.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

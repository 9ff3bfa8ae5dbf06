// Package dtmf detects and generates telephone digits (PROTOCOL.md §16, §31).
//
//   - [Parse] and [Event.Append] read and write the RFC 4733 telephone-event payload.
//   - [Detector] turns one RTP stream's telephone-event packets into digits, each exactly once
//     however many end packets arrive, lost, duplicated or reordered (RFC 4733 §2.5.2).
//   - [Injection] is the packet sequence rtpbridge sends to inject a digit (§16).
//   - [Inband] finds DTMF tones in decoded audio with the Goertzel algorithm, to the
//     acceptance and rejection limits of ITU-T Q.24.
//   - [Fax] finds the fax calling tone (CNG, 1100 Hz) and answer tone (CED, 2100 Hz).
//
// Nothing here knows about sessions, sockets or codecs: the detectors take payloads or PCM
// and a clock, so each can be tested and fuzzed on its own. None of them allocates per packet
// or per frame.
package dtmf

// Package recording writes rtpbridge's recordings: PCAP files of the decrypted media
// (PROTOCOL.md §17) and decoded WAV/Ogg files (§33), each through a bounded queue to a writer
// goroutine of its own so that a slow or full disk costs recorded packets, never media; and the
// path rules of recording_dir (§7, §24) that creating, listing, downloading and deleting
// recordings share.
package recording

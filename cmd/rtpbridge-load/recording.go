package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// checkRecord validates -record and -record-dir: a format rtpbridge records, and a directory
// to name the files in unless the server is spawned here.
func checkRecord(format, dir string, spawned bool) error {
	switch format {
	case "":
		return nil
	case "pcap", "wav", "ogg":
	default:
		return fmt.Errorf("-record %q: use pcap, wav or ogg", format)
	}
	if dir == "" && !spawned {
		return fmt.Errorf("-record needs -record-dir (the server's recording_dir) unless the server is spawned with -spawn")
	}
	return nil
}

// startRecording records the call's whole session (PROTOCOL.md §7, §33) when -record asks:
// a PCAP, or a WAV with one channel per party, or a mixed Ogg, named after the session.
func (r *runner) startRecording(ctx context.Context, c *call) error {
	if r.cfg.Record == "" {
		return nil
	}
	params := map[string]any{
		"file_path": filepath.Join(r.cfg.RecordDir, c.session+"."+r.cfg.Record),
		"format":    r.cfg.Record,
	}
	if r.cfg.Record == "wav" {
		params["layout"] = "separate"
	}
	return c.ctl.call(ctx, requestTimeout, "recording.start", params, nil)
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
)

const pcap2wavUsage = `usage: rtpbridge pcap2wav IN.pcap OUT.wav [--layout mixed|separate] [--rate 8000|16000|48000]

Converts a PCAP recording rtpbridge wrote into the decoded recording PROTOCOL.md §33 describes:
each endpoint's audio decoded and placed on one wall-clock timeline (gaps are silence), mixed
into one channel (default) or one channel per endpoint (separate, at most 8). OUT ending in
.ogg writes Ogg Opus instead of WAV. OUT must not exist yet.
`

// pcap2wav runs the `rtpbridge pcap2wav` subcommand; it returns the exit status.
func pcap2wav(args []string, stdout, stderr io.Writer) int {
	opts := recording.ConvertOptions{Container: "wav", Rate: 16000}
	var files []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		if name == "h" || name == "help" {
			fmt.Fprint(stdout, pcap2wavUsage)
			return 0
		}
		if name != "layout" && name != "rate" {
			fmt.Fprintf(stderr, "rtpbridge pcap2wav: unknown flag %s\n%s", a, pcap2wavUsage)
			return 2
		}
		if !hasValue {
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "rtpbridge pcap2wav: %s needs a value\n%s", a, pcap2wavUsage)
				return 2
			}
			i++
			value = args[i]
		}
		switch name {
		case "layout":
			if value != "mixed" && value != "separate" {
				fmt.Fprintf(stderr, "rtpbridge pcap2wav: --layout %q: want mixed or separate\n", value)
				return 2
			}
			opts.Separate = value == "separate"
		case "rate":
			n, err := strconv.Atoi(value)
			if err != nil || (n != 8000 && n != 16000 && n != 48000) {
				fmt.Fprintf(stderr, "rtpbridge pcap2wav: --rate %q: want 8000, 16000 or 48000\n", value)
				return 2
			}
			opts.Rate = n
		}
	}
	if len(files) != 2 {
		fmt.Fprint(stderr, pcap2wavUsage)
		return 2
	}
	if strings.EqualFold(filepath.Ext(files[1]), ".ogg") {
		opts.Container = "ogg"
	}
	if err := convert(files[0], files[1], opts, stdout); err != nil {
		fmt.Fprintf(stderr, "rtpbridge pcap2wav: %v\n", err)
		return 1
	}
	return 0
}

func convert(inPath, outPath string, opts recording.ConvertOptions, stdout io.Writer) (err error) {
	in, err := os.Open(inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists", outPath)
		}
		return err
	}
	codec.QuietFFmpeg(false)
	st, err := recording.ConvertPCAP(in, out, opts)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(outPath)
		return err
	}
	fmt.Fprintf(stdout, "%s: %d endpoints, %d audio packets, %d other packets skipped; wrote %s (%s, %d Hz, %d channels)\n",
		inPath, st.Parties, st.Packets, st.Skipped, outPath, opts.Container, opts.Rate, st.Channels)
	return nil
}

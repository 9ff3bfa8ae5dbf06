package codec

import "github.com/asticode/go-astiav"

// QuietFFmpeg limits FFmpeg's own logging (written straight to stderr by libav*) to errors, or
// to nothing but fatal ones when verbose is false. Corrupt payloads are expected on a media
// bridge and are already counted in rtpbridge_transcode_errors_total; FFmpeg's per-packet
// complaints about them would flood the log.
func QuietFFmpeg(verbose bool) {
	if verbose {
		astiav.SetLogLevel(astiav.LogLevelError)
		return
	}
	astiav.SetLogLevel(astiav.LogLevelFatal)
}

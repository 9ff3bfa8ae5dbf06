// Package audiotest holds audio helpers shared by tests: tone generation, frequency and
// signal-to-noise measurement, an independent G.711 reference decoder, a minimal Ogg Opus
// writer and reader, WAV loading and a wrapper around the Debian ffmpeg CLI used as an
// independent judge for G.722 and Opus.
//
// It is imported only from _test files. Production code never decodes audio in Go: everything
// here exists so that tests can check what FFmpeg produced with something that is not FFmpeg
// (or, for the CLI, not the FFmpeg build under test).
package audiotest

//go:build race

package sdes

// raceEnabled: under the race detector sync.Pool drops items on purpose, so
// pion's pooled AES-CM buffers allocate and allocation counts mean nothing.
const raceEnabled = true

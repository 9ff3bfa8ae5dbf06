//go:build !race

package sdes

// raceEnabled: see race_on_test.go.
const raceEnabled = false

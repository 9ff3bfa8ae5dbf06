//go:build race

package server_test

// raceEnabled: the race detector keeps shadow memory and access history that grow RSS
// without any leak of ours, so RSS budgets are only checked without it.
const raceEnabled = true

//go:build !unix

package config

// dirAdvice has nothing platform-specific to add outside Unix.
func dirAdvice(dir string, err error) string { return "" }

package session

// lookupPlaybackMethod resolves the methods of file playback and tone endpoints (PROTOCOL.md §6, §18, §19).
func lookupPlaybackMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

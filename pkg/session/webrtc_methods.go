package session

// lookupWebrtcMethod resolves the methods of WebRTC endpoints (PROTOCOL.md §6, §10, §13.5, §21).
func lookupWebrtcMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

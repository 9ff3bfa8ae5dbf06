package session

// lookupBridgeMethod resolves the methods of session bridge, endpoint transfer and WebSocket audio endpoints (PROTOCOL.md §22, §30).
func lookupBridgeMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

package session

// lookupBridgeMethod resolves the methods of session bridge, endpoint transfer and WebSocket audio endpoints (PROTOCOL.md §22, §30).
func lookupBridgeMethod(name string) (Method, bool) {
	switch name {
	case "session.bridge":
		return newMethod(name, (*Session).sessionBridge), true
	case "endpoint.transfer":
		return newMethod(name, (*Session).endpointTransfer), true
	case "endpoint.create_websocket":
		return newMethod(name, (*Session).createWebsocket), true
	}
	return Method{}, false
}

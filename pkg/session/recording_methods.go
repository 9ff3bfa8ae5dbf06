package session

// lookupRecordingMethod resolves the methods of recordings (PROTOCOL.md §7, §17, §33).
func lookupRecordingMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

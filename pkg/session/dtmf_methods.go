package session

// lookupDtmfMethod resolves the methods of DTMF injection and detection, fax tone detection (PROTOCOL.md §6, §16, §31).
func lookupDtmfMethod(name string) (Method, bool) {
	switch name {
	}
	return Method{}, false
}

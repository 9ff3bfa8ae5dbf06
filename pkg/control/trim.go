package control

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// controlReadBuffer is the read buffer of a control connection: requests are small JSON and
// gorilla reads a larger message through it in several fills.
const controlReadBuffer = 512

// hijackTrimmer hands the upgrader the hijacked connection and keeps net/http's buffered
// reader and writer, so that once the handshake is done their buffers can be let go
// (trimHijacked). net/http keeps both referenced for the connection's whole life: its
// connection goroutine waits in the handler, which melody runs the connection's reader in.
// Without this they are 8 KiB per connection that nothing uses again: gorilla reads through a
// buffer of its own (ReadBufferSize) and writes from a pool, and the 101 response went out
// through the writer's buffer before melody calls the connect handler.
type hijackTrimmer struct {
	http.ResponseWriter
	brw *bufio.ReadWriter
}

// Hijack implements http.Hijacker for gorilla's upgrader.
func (h *hijackTrimmer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.brw = brw
	return conn, brw, err
}

// trimHijacked swaps the hijacked reader's and writer's buffers for minimal ones (the objects
// stay, net/http holds pointers to them). Only call it after the upgrade succeeded: the
// upgrader refuses a reader holding buffered bytes, and has written its response.
func (h *hijackTrimmer) trimHijacked() {
	if h.brw == nil {
		return
	}
	*h.brw.Reader = *bufio.NewReaderSize(nil, 16)
	*h.brw.Writer = *bufio.NewWriterSize(io.Discard, 16)
	h.brw = nil
}

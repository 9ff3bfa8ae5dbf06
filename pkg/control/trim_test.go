package control

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// Once the upgrade is done, the hijacked reader and writer keep 16-byte buffers instead of
// net/http's 4 KiB ones, and still work.
func TestTrimHijackedLetsTheBuffersGo(t *testing.T) {
	var out bytes.Buffer
	brw := bufio.NewReadWriter(bufio.NewReader(strings.NewReader("")), bufio.NewWriter(&out))
	if brw.Reader.Size() != 4096 || brw.Writer.Size() != 4096 {
		t.Fatalf("test setup: sizes %d and %d", brw.Reader.Size(), brw.Writer.Size())
	}
	h := &hijackTrimmer{brw: brw}
	h.trimHijacked()
	if brw.Reader.Size() != 16 || brw.Writer.Size() != 16 {
		t.Fatalf("after trimming: reader %d B, writer %d B; want 16 each", brw.Reader.Size(), brw.Writer.Size())
	}
	if _, err := brw.WriteString("written after the trim goes nowhere"); err != nil {
		t.Fatal(err)
	}
	if err := brw.Flush(); err != nil {
		t.Fatal(err)
	}
	h.trimHijacked() // idempotent
}

// A control message far larger than the connection's 512-byte read buffer arrives whole.
func TestLargeRequestThroughSmallReadBuffer(t *testing.T) {
	h := newHarness(t, 8, 8)
	pad := strings.Repeat("x", 40000)
	req := `{"id":"big","method":"session.list","params":{},"pad":"` + pad + `"}`
	if err := h.client.WriteMessage(1, []byte(req)); err != nil {
		t.Fatal(err)
	}
	m := h.read(t)
	if string(m["id"]) != `"big"` {
		t.Fatalf("response %v", m)
	}
}

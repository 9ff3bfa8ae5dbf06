package rtpstats

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestSenderFractionLost: every report block on our SSRC, with or without an LSR, records its
// fraction lost and counts; blocks on other SSRCs are ignored.
func TestSenderFractionLost(t *testing.T) {
	s := NewSender(0xaaaa, 8000)
	if f, n := s.FractionLost(); f != 0 || n != 0 {
		t.Fatalf("before any report: %d, %d reports", f, n)
	}
	now := time.Now()
	s.OnReportBlock(rtcp.ReceptionReport{SSRC: 0xaaaa, FractionLost: 26}, now)
	if f, n := s.FractionLost(); f != 26 || n != 1 {
		t.Errorf("after a report without LSR: %d, %d reports", f, n)
	}
	s.OnReportBlock(rtcp.ReceptionReport{SSRC: 0xbbbb, FractionLost: 200}, now)
	if f, n := s.FractionLost(); f != 26 || n != 1 {
		t.Errorf("after a report on another SSRC: %d, %d reports", f, n)
	}
	s.OnReportBlock(rtcp.ReceptionReport{SSRC: 0xaaaa, FractionLost: 0, LastSenderReport: 1234}, now)
	if f, n := s.FractionLost(); f != 0 || n != 2 {
		t.Errorf("after a clean report with an unknown LSR: %d, %d reports", f, n)
	}
}

package codec

import "testing"

// TestFECPolicy follows a destination's receiver reports: clean reports keep libopus's
// defaults; the first report of 1 % or more turns protection on at once, with the loss
// rounded up as the expected loss and FEC when the destination asked for it; lower reports
// halve the estimate, never below themselves, and protection stops below 0.5 %.
func TestFECPolicy(t *testing.T) {
	var p FECPolicy
	if got := p.Protection(true); got != (LossProtection{}) {
		t.Fatalf("before any report: %+v", got)
	}
	steps := []struct {
		fraction uint8 // 1/256
		want     LossProtection
		wantNo   LossProtection // the destination did not ask for FEC
	}{
		{0, LossProtection{}, LossProtection{}},
		{2, LossProtection{}, LossProtection{}},                                              // 0.8 %: below FECOnLoss
		{3, LossProtection{true, 2}, LossProtection{false, 2}},                               // 1.2 %
		{26, LossProtection{true, 11}, LossProtection{false, 11}},                            // 10.2 %
		{0, LossProtection{true, 6}, LossProtection{false, 6}},                               // 5.1 %
		{0, LossProtection{true, 3}, LossProtection{false, 3}},                               // 2.5 %
		{5, LossProtection{true, 2}, LossProtection{false, 2}},                               // max(1.95, 1.27) %
		{0, LossProtection{true, 1}, LossProtection{false, 1}},                               // 0.98 %
		{0, LossProtection{}, LossProtection{}},                                              // 0.49 %: below FECOffLoss
		{255, LossProtection{true, MaxExpectedLoss}, LossProtection{false, MaxExpectedLoss}}, // 99.6 %
	}
	for i, s := range steps {
		p.Report(s.fraction)
		if got := p.Protection(true); got != s.want {
			t.Errorf("report %d (%d/256): estimate %.2f %%, protection %+v, want %+v", i, s.fraction, p.Loss(), got, s.want)
		}
		if got := p.Protection(false); got != s.wantNo {
			t.Errorf("report %d (%d/256), no useinbandfec: protection %+v, want %+v", i, s.fraction, got, s.wantNo)
		}
	}
	// Hysteresis: between the thresholds the state is kept, from either side.
	var q FECPolicy
	q.Report(2) // 0.78 %, off
	if q.Protection(true).FEC {
		t.Error("0.78 % from off: on")
	}
	q.Report(4) // 1.56 %, on
	q.Report(2) // estimate 0.78 %: stays on
	if !q.Protection(true).FEC {
		t.Error("0.78 % from on: off")
	}
}

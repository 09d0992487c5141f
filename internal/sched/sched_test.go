package sched

import (
	"reflect"
	"strings"
	"testing"
)

func TestWeightedSequence(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []int
	}{
		{"equal", []uint32{1, 1, 1}, []int{0, 1, 2}},
		{"gcd", []uint32{2, 2}, []int{0, 1}},
		{"interleaved", []uint32{4, 3, 2}, []int{0, 0, 1, 0, 1, 2, 0, 1, 2}},
		{"zero skipped", []uint32{1, 0, 2}, []int{2, 0, 2}},
		{"all zero", []uint32{0, 0}, nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WeightedSequence(tt.weights)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("WeightedSequence(%v) = %v, want %v", tt.weights, got, tt.want)
			}
		})
	}
}

func TestWeightedSequenceScalesLargeWeights(t *testing.T) {
	weights := []uint32{65535, 65534, 1, 30000}
	seq := WeightedSequence(weights)
	if len(seq) > MaxSequence {
		t.Fatalf("sequence length %d > %d", len(seq), MaxSequence)
	}
	counts := make([]int, len(weights))
	for _, i := range seq {
		counts[i]++
	}
	if counts[2] < 1 {
		t.Fatal("a server with weight 1 vanished after scaling")
	}
	// Shares stay within 0.1% of the configured weights.
	var sum float64
	for _, w := range weights {
		sum += float64(w)
	}
	for i, w := range weights {
		want := float64(w) / sum
		got := float64(counts[i]) / float64(len(seq))
		if d := got - want; d > 0.001 || d < -0.001 {
			t.Errorf("server %d: share %.4f, want %.4f", i, got, want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, ok := range []string{"rr", "wrr", "lc", "wlc", "sh", "dh", "mh", "RR", "sed", "nq", "fo", "ovf", "lblc", "lblcr", "twos"} {
		if _, err := ParseKind(ok); err != nil {
			t.Errorf("ParseKind(%q): %v", ok, err)
		}
	}
	for name, want := range map[string]string{"bogus": "unknown scheduler"} {
		if _, err := ParseKind(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKind(%q) = %v, want error containing %q", name, err, want)
		}
	}
	for k, want := range map[Kind]bool{LeastConnection: true, WeightedOverflow: true, NeverQueue: true, Maglev: false, RoundRobin: false} {
		if k.ScansReals() != want {
			t.Errorf("%s.ScansReals() = %v", k, !want)
		}
	}
	if RoundRobin.Weighted() || !WeightedRoundRobin.Weighted() {
		t.Error("Weighted() wrong for rr/wrr")
	}
}

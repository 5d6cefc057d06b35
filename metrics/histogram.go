package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// RegistrationBuckets are the default bounds, in seconds, of the
// registration latency histogram: a Binding Update answered over a good
// path takes tens of milliseconds, one over a congested cellular path or
// after retransmissions (1 s, then doubling) seconds.
var RegistrationBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Histogram counts observations into fixed buckets. The daemon's event
// loop observes; a scrape reads; the lock they share is held for a few
// additions.
type Histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64
	count  uint64
	sum    float64
}

// NewHistogram returns a Histogram with the given upper bounds, which must
// be finite and strictly increasing.
func NewHistogram(bounds []float64) (*Histogram, error) {
	if len(bounds) == 0 {
		return nil, fmt.Errorf("metrics: a histogram needs at least one bucket bound")
	}
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("metrics: bucket bound %v is not finite", b)
		}
		if i > 0 && b <= bounds[i-1] {
			return nil, fmt.Errorf("metrics: bucket bounds %v are not strictly increasing", bounds)
		}
	}
	return &Histogram{bounds: slices.Clone(bounds), counts: make([]uint64, len(bounds))}, nil
}

// Observe counts one observation, in seconds for durations. NaN is not
// counted: it would make the sum NaN for good.
func (h *Histogram) Observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	i, _ := slices.BinarySearch(h.bounds, v) // first bound >= v
	h.mu.Lock()
	if i < len(h.counts) {
		h.counts[i]++
	}
	h.count++
	h.sum += v
	h.mu.Unlock()
}

// Value is the histogram now.
func (h *Histogram) Value() HistogramValue {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HistogramValue{Bounds: h.bounds, Counts: slices.Clone(h.counts), Count: h.count, Sum: h.sum}
}

package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestEncodeBytes(t *testing.T) {
	fams := []Family{
		{Name: "a_total", Help: "back\\slash and\nnewline", Type: TypeCounter, Metrics: []Metric{
			{Labels: []Label{{"reason", `q"uote`}, {"x", "a\\b\nc"}}, Value: 3},
			{Value: 1 << 40},
		}},
		{Name: "g", Help: "gauge", Type: TypeGauge, Metrics: []Metric{
			{Value: 0.25}, {Labels: []Label{{"k", "inf"}}, Value: math.Inf(1)},
			{Labels: []Label{{"k", "nan"}}, Value: math.NaN()}, {Labels: []Label{{"k", "big"}}, Value: 1e300},
		}},
		{Name: "h_seconds", Help: "hist", Type: TypeHistogram, Metrics: []Metric{
			{Labels: []Label{{"r", "x"}}, Hist: &HistogramValue{Bounds: []float64{0.1, 1}, Counts: []uint64{2, 1}, Count: 4, Sum: 5.5}},
		}},
		{Name: "empty", Help: "no samples", Type: TypeGauge},
	}
	got, err := Encode(fams)
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_total back\\slash and\nnewline
# TYPE a_total counter
a_total{reason="q\"uote",x="a\\b\nc"} 3
a_total 1099511627776
# HELP g gauge
# TYPE g gauge
g 0.25
g{k="inf"} +Inf
g{k="nan"} NaN
g{k="big"} 1e+300
# HELP h_seconds hist
# TYPE h_seconds histogram
h_seconds_bucket{r="x",le="0.1"} 2
h_seconds_bucket{r="x",le="1"} 3
h_seconds_bucket{r="x",le="+Inf"} 4
h_seconds_sum{r="x"} 5.5
h_seconds_count{r="x"} 4
# HELP empty no samples
# TYPE empty gauge
`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeRefusesBadInput(t *testing.T) {
	ok := Family{Name: "ok_total", Type: TypeCounter, Metrics: []Metric{{Value: 1}}}
	hist := func(h *HistogramValue, ls ...Label) Family {
		return Family{Name: "h", Type: TypeHistogram, Metrics: []Metric{{Labels: ls, Hist: h}}}
	}
	for _, c := range []struct {
		fam  Family
		want string
	}{
		{Family{Name: "9bad", Type: TypeGauge}, `invalid metric name "9bad"`},
		{Family{Name: "bad-name", Type: TypeGauge}, `invalid metric name`},
		{Family{Name: "c", Type: TypeCounter}, "counter c does not end in _total"},
		{Family{Name: "s", Type: "summary"}, `unknown type "summary"`},
		{Family{Name: "g", Type: TypeGauge, Metrics: []Metric{{Labels: []Label{{"a-b", "x"}}}}}, `invalid label name "a-b"`},
		{Family{Name: "g", Type: TypeGauge, Metrics: []Metric{{Labels: []Label{{"__x", "x"}}}}}, `invalid label name "__x"`},
		{Family{Name: "g", Type: TypeGauge, Metrics: []Metric{{Labels: []Label{{"a", "x"}, {"a", "y"}}}}}, "label a twice"},
		{Family{Name: "g", Type: TypeGauge, Metrics: []Metric{{Labels: []Label{{"a", "x"}}}, {Labels: []Label{{"a", "x"}}}}}, `two metrics with labels {a="x"}`},
		{Family{Name: "g", Type: TypeGauge, Metrics: []Metric{{Hist: &HistogramValue{}}}}, "with a histogram value"},
		{hist(nil), "without a value"},
		{hist(&HistogramValue{Bounds: []float64{1}, Counts: []uint64{1}, Count: 1}, Label{"le", "1"}), `"le" is reserved`},
		{hist(&HistogramValue{Bounds: []float64{1, 2}, Counts: []uint64{1}, Count: 1}), "1 bucket counts for 2 bounds"},
		{hist(&HistogramValue{Bounds: []float64{2, 1}, Counts: []uint64{0, 0}}), "not increasing"},
		{hist(&HistogramValue{Bounds: []float64{1}, Counts: []uint64{3}, Count: 2}), "buckets hold 3 observations, count is 2"},
	} {
		b, err := Encode([]Family{ok, c.fam})
		if err == nil || !strings.Contains(err.Error(), c.want) || b != nil {
			t.Errorf("%+v: %q, %v; want an error with %q and no bytes", c.fam, b, err, c.want)
		}
	}
	if b, err := Encode([]Family{ok, ok}); err == nil || b != nil {
		t.Errorf("a family twice: %q %v", b, err)
	}
}

func TestHistogram(t *testing.T) {
	for _, bad := range [][]float64{nil, {1, 1}, {2, 1}, {math.Inf(1)}, {math.NaN()}} {
		if _, err := NewHistogram(bad); err == nil {
			t.Errorf("NewHistogram(%v) accepted", bad)
		}
	}
	bounds := []float64{0.1, 1}
	h, err := NewHistogram(bounds)
	if err != nil {
		t.Fatal(err)
	}
	bounds[0] = 99 // the histogram keeps its own copy
	for _, v := range []float64{0.05, 0.1, 0.5, 1, 3, math.NaN(), -1} {
		h.Observe(v)
	}
	v := h.Value()
	// 0.1 is in the first bucket (le is inclusive), -1 too; 3 only in Count.
	if v.Bounds[0] != 0.1 || v.Counts[0] != 3 || v.Counts[1] != 2 || v.Count != 6 || math.Abs(v.Sum-3.65) > 1e-9 {
		t.Fatalf("%+v", v)
	}
	h.Observe(0.5)
	if v.Counts[1] != 2 {
		t.Fatal("Value shares its counts with the histogram")
	}
}

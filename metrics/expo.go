// Package metrics publishes the daemons' status as Prometheus metrics: a
// writer of the text exposition format 0.0.4 of its own (a client library
// would cost the router binary far more than the few hundred lines here),
// the metric families of both roles computed from status snapshots, a
// Histogram the daemon feeds, and a /metrics responder.
package metrics

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a metric family's type.
type Type string

// The family types written.
const (
	TypeCounter   Type = "counter"
	TypeGauge     Type = "gauge"
	TypeHistogram Type = "histogram"
)

// ContentType is the type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Label is one name="value" pair of a sample.
type Label struct{ Name, Value string }

// Metric is one labelled member of a family: Value for counters and
// gauges, Hist for histograms.
type Metric struct {
	Labels []Label
	Value  float64
	Hist   *HistogramValue
}

// HistogramValue is a histogram at one moment: Counts[i] observations at
// most Bounds[i] and above Bounds[i-1] (not cumulative); Count includes
// those above the last bound.
type HistogramValue struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Family is a metric family: one HELP and TYPE, its metrics.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Metrics []Metric
}

// Encode writes fams in the text exposition format. It checks everything
// first: on an error it returns no bytes, and the error names the family.
func Encode(fams []Family) ([]byte, error) {
	seen := map[string]bool{}
	for _, f := range fams {
		if err := f.check(); err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("metrics: family %s twice", f.Name)
		}
		seen[f.Name] = true
	}
	var b bytes.Buffer
	for _, f := range fams {
		f.write(&b)
	}
	return b.Bytes(), nil
}

func (f Family) check() error {
	if !validName(f.Name, true) {
		return fmt.Errorf("metrics: invalid metric name %q", f.Name)
	}
	switch f.Type {
	case TypeCounter:
		// The exposition format does not require the suffix, but the
		// naming conventions (and promtool) do; enforcing it here keeps
		// every counter we publish greppable by it.
		if !strings.HasSuffix(f.Name, "_total") {
			return fmt.Errorf("metrics: counter %s does not end in _total", f.Name)
		}
	case TypeGauge, TypeHistogram:
	default:
		return fmt.Errorf("metrics: family %s has unknown type %q", f.Name, f.Type)
	}
	sets := map[string]bool{}
	for _, m := range f.Metrics {
		names := map[string]bool{}
		for _, l := range m.Labels {
			if !validName(l.Name, false) || strings.HasPrefix(l.Name, "__") {
				return fmt.Errorf("metrics: %s: invalid label name %q", f.Name, l.Name)
			}
			if f.Type == TypeHistogram && l.Name == "le" {
				return fmt.Errorf("metrics: %s: histogram label \"le\" is reserved", f.Name)
			}
			if names[l.Name] {
				return fmt.Errorf("metrics: %s: label %s twice", f.Name, l.Name)
			}
			names[l.Name] = true
		}
		key := labelKey(m.Labels)
		if sets[key] {
			return fmt.Errorf("metrics: %s: two metrics with labels {%s}", f.Name, key)
		}
		sets[key] = true
		if f.Type == TypeHistogram {
			h := m.Hist
			if h == nil {
				return fmt.Errorf("metrics: histogram %s without a value", f.Name)
			}
			if len(h.Counts) != len(h.Bounds) {
				return fmt.Errorf("metrics: %s: %d bucket counts for %d bounds", f.Name, len(h.Counts), len(h.Bounds))
			}
			var n uint64
			for i, c := range h.Counts {
				if i > 0 && !(h.Bounds[i] > h.Bounds[i-1]) || math.IsNaN(h.Bounds[i]) {
					return fmt.Errorf("metrics: %s: bucket bounds not increasing", f.Name)
				}
				n += c
			}
			if n > h.Count {
				return fmt.Errorf("metrics: %s: buckets hold %d observations, count is %d", f.Name, n, h.Count)
			}
		} else if m.Hist != nil {
			return fmt.Errorf("metrics: %s %s with a histogram value", f.Type, f.Name)
		}
	}
	return nil
}

func labelKey(ls []Label) string {
	var b strings.Builder
	writeLabels(&b, ls, "", "")
	return b.String()
}

func (f Family) write(b *bytes.Buffer) {
	b.WriteString("# HELP ")
	b.WriteString(f.Name)
	b.WriteByte(' ')
	b.WriteString(escapeHelp(f.Help))
	b.WriteString("\n# TYPE ")
	b.WriteString(f.Name)
	b.WriteByte(' ')
	b.WriteString(string(f.Type))
	b.WriteByte('\n')
	for _, m := range f.Metrics {
		if f.Type != TypeHistogram {
			sample(b, f.Name, m.Labels, "", "", formatFloat(m.Value))
			continue
		}
		h := m.Hist
		var cum uint64
		for i, c := range h.Counts {
			cum += c
			sample(b, f.Name+"_bucket", m.Labels, "le", formatFloat(h.Bounds[i]), strconv.FormatUint(cum, 10))
		}
		sample(b, f.Name+"_bucket", m.Labels, "le", "+Inf", strconv.FormatUint(h.Count, 10))
		sample(b, f.Name+"_sum", m.Labels, "", "", formatFloat(h.Sum))
		sample(b, f.Name+"_count", m.Labels, "", "", strconv.FormatUint(h.Count, 10))
	}
}

func sample(b *bytes.Buffer, name string, ls []Label, extraName, extraValue, value string) {
	b.WriteString(name)
	if len(ls) > 0 || extraName != "" {
		b.WriteByte('{')
		var sb strings.Builder
		writeLabels(&sb, ls, extraName, extraValue)
		b.WriteString(sb.String())
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(value)
	b.WriteByte('\n')
}

func writeLabels(b *strings.Builder, ls []Label, extraName, extraValue string) {
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(l.Value))
		b.WriteByte('"')
	}
	if extraName != "" {
		if len(ls) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName)
		b.WriteString(`="`)
		b.WriteString(extraValue)
		b.WriteByte('"')
	}
}

// validName reports whether s is a metric name (colons allowed) or a label
// name.
func validName(s string, metric bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			i > 0 && '0' <= c && c <= '9' || metric && c == ':'
		if !ok {
			return false
		}
	}
	return true
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// formatFloat writes integral values as integers (counters of bytes stay
// exact and readable up to 2^53) and the rest in Go's shortest form, which
// the format's parsers read.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

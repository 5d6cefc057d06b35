package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// dumpTrials writes, for a post-mortem of a gap, every datagram sent from
// baseWindow before each fault until the trial's end with when it arrived,
// and the TCP reads of the same windows: dir/fault-<key>.csv and
// dir/fault-<key>-tcp.csv, times in ms since the streams started.
func dumpTrials(dir string, fr *faultResult, reads []tcpRead) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, body func(w *bufio.Writer)) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		body(w)
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	msOf := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	err := write("fault-"+fr.f.key+".csv", func(w *bufio.Writer) {
		fmt.Fprintln(w, "trial,stream,seq,sent_ms,arrived_ms")
		for ti, t := range fr.trials {
			for _, s := range fr.streams {
				from := sort.Search(len(s.sent), func(i int) bool { return s.sent[i] >= int64(t.fault-baseWindow) })
				to := sort.Search(len(s.sent), func(i int) bool { return s.sent[i] >= int64(t.end) })
				for seq := from; seq < to; seq++ {
					arrived := ""
					if seq < len(s.recv) && s.recv[seq] != 0 {
						arrived = fmt.Sprintf("%.3f", msOf(s.recv[seq]))
					}
					fmt.Fprintf(w, "%d,%s,%d,%.3f,%s\n", ti+1, s.name, seq, msOf(s.sent[seq]), arrived)
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return write("fault-"+fr.f.key+"-tcp.csv", func(w *bufio.Writer) {
		fmt.Fprintln(w, "trial,arrived_ms,bytes")
		for ti, t := range fr.trials {
			for _, r := range reads {
				if r.at >= int64(t.fault-baseWindow) && r.at < int64(t.end) {
					fmt.Fprintf(w, "%d,%.3f,%d\n", ti+1, msOf(r.at), r.n)
				}
			}
		}
	})
}

// Package fleetweb is the home agent's live fleet page: every mobile
// router with its bindings (care-of address, encapsulation, RTT, state,
// counters) and flows, served on the metrics listener at /. The page is
// one self-contained document (HTML, CSS and JavaScript embedded in the
// binary, no outside assets) that keeps itself current from server-sent
// events at /events, falling back to polling /status.json; it is
// read-only.
//
// With `option web_token` set, every request must carry the token, as
// ?token= or in an Authorization: Bearer header. Without one the page is
// for the machine itself: requests from other than a loopback address are
// refused, whatever address the listener is on.
package fleetweb

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nemod/internal/httpd"
	"nemod/status"
)

// Snapshot is what the page shows: the home agent's status and its flow
// tables (one per mobile router, matched by name).
type Snapshot struct {
	Status status.HomeAgent      `json:"status"`
	Flows  status.HomeAgentFlows `json:"flows"`
}

// Options configure the page.
type Options struct {
	// Token is `option web_token`; empty: loopback clients only.
	Token string
	// Heartbeat is how often an idle event stream says it is alive
	// (default 15 s), so that the page can tell a quiet fleet from a dead
	// connection.
	Heartbeat time.Duration
	// MinInterval spaces the snapshots pushed to one stream (default
	// 200 ms): a burst of changes costs one push, not one each.
	MinInterval time.Duration
}

// Fleet serves the page for the latest snapshot.
type Fleet struct {
	opts Options

	mu      sync.Mutex
	snap    *Snapshot
	version uint64
	json    []byte        // snap encoded, made on first demand
	changed chan struct{} // closed and replaced by every Update

	pageLoads atomic.Uint64 // GET / answered, for tests
}

// New returns a Fleet with nothing to show until the first Update.
func New(opts Options) *Fleet {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = 200 * time.Millisecond
	}
	return &Fleet{opts: opts, changed: make(chan struct{})}
}

// Update publishes s to the page and its open streams. It does not block
// and encodes nothing: the first request for the new version does. s is
// not to be changed afterwards.
func (f *Fleet) Update(s Snapshot) {
	f.mu.Lock()
	f.snap = &s
	f.version++
	f.json = nil
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// current is the latest snapshot's JSON and version, and the channel that
// closes when there is a newer one.
func (f *Fleet) current() ([]byte, uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.json == nil {
		snap := f.snap
		if snap == nil {
			snap = &Snapshot{}
		}
		b, err := json.Marshal(snap)
		if err != nil {
			// status types are plain data; this cannot fail, and if it
			// did the page would show the error rather than stale data.
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		f.json = b
	}
	return f.json, f.version, f.changed
}

// Mount routes the page's paths on mux.
func (f *Fleet) Mount(mux *httpd.Mux) {
	mux.Handle("/", f.guard(f.page))
	mux.Handle("/status.json", f.guard(f.statusJSON))
	mux.Handle("/events", f.guard(f.events))
}

// Authorize decides whether a request may see the page: 0 when it may,
// else the status to refuse it with and why.
func Authorize(token string, r *httpd.Request) (int, string) {
	if token == "" {
		if !r.Remote.Addr().IsLoopback() {
			return 403, "no web_token is set: the fleet page answers loopback clients only"
		}
		return 0, ""
	}
	got := r.Query.Get("token")
	if h, ok := strings.CutPrefix(r.Header["authorization"], "Bearer "); ok {
		got = strings.TrimSpace(h)
	}
	// Comparing digests keeps the time independent of the token's length
	// as well as of its contents.
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	if got == "" || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return 401, "a valid token is needed (?token= or Authorization: Bearer)"
	}
	return 0, ""
}

func (f *Fleet) guard(h httpd.Handler) httpd.Handler {
	return func(w *httpd.Response, r *httpd.Request) {
		w.Header["Cache-Control"] = "no-store"
		w.Header["X-Content-Type-Options"] = "nosniff"
		w.Header["Referrer-Policy"] = "no-referrer"
		w.Header["X-Frame-Options"] = "DENY"
		if code, why := Authorize(f.opts.Token, r); code != 0 {
			if code == 401 {
				w.Header["WWW-Authenticate"] = `Bearer realm="nemod"`
			}
			w.Reply(code, "text/plain; charset=utf-8", []byte(why+"\n"))
			return
		}
		h(w, r)
	}
}

//go:embed page
var assets embed.FS

// page is the document with its style and script inlined, and the
// content security policy that allows exactly those two by digest: a
// token in the URL must never reach another origin, and nothing but our
// own code may run.
var page, pageCSP = func() ([]byte, string) {
	html, _ := assets.ReadFile("page/index.html")
	css, _ := assets.ReadFile("page/style.css")
	js, _ := assets.ReadFile("page/app.js")
	digest := func(b []byte) string {
		d := sha256.Sum256(b)
		return "'sha256-" + base64.StdEncoding.EncodeToString(d[:]) + "'"
	}
	doc := strings.Replace(string(html), "/*STYLE*/", string(css), 1)
	doc = strings.Replace(doc, "/*SCRIPT*/", string(js), 1)
	csp := "default-src 'none'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
		"style-src " + digest(css) + "; script-src " + digest(js)
	return []byte(doc), csp
}()

func (f *Fleet) page(w *httpd.Response, r *httpd.Request) {
	f.pageLoads.Add(1)
	w.Header["Content-Security-Policy"] = pageCSP
	w.Reply(200, "text/html; charset=utf-8", page)
}

func (f *Fleet) statusJSON(w *httpd.Response, r *httpd.Request) {
	b, v, _ := f.current()
	w.Header["X-Nemod-Version"] = strconv.FormatUint(v, 10)
	w.Reply(200, "application/json", b)
}

// events streams the snapshot now and after every change, and a heartbeat
// when idle, until the client goes or the server closes.
func (f *Fleet) events(w *httpd.Response, r *httpd.Request) {
	if !w.Start(200, "text/event-stream; charset=utf-8") {
		return
	}
	// Tell EventSource how soon to come back after a lost connection.
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	beat := time.NewTicker(f.opts.Heartbeat)
	defer beat.Stop()
	var sent uint64
	var last time.Time
	first := true
	for {
		b, v, changed := f.current()
		if first || v != sent {
			if wait := f.opts.MinInterval - time.Since(last); wait > 0 && !first {
				select {
				case <-time.After(wait):
					continue // a newer version may have come meanwhile
				case <-r.Context.Done():
					return
				}
			}
			msg := "id: " + strconv.FormatUint(v, 10) + "\nevent: status\ndata: "
			if _, err := w.Write(append(append([]byte(msg), b...), "\n\n"...)); err != nil || w.Flush() != nil {
				return
			}
			sent, last, first = v, time.Now(), false
		}
		select {
		case <-changed:
		case <-beat.C:
			msg := "event: heartbeat\ndata: " + strconv.FormatInt(time.Now().UnixMilli(), 10) + "\n\n"
			if _, err := w.Write([]byte(msg)); err != nil || w.Flush() != nil {
				return
			}
		case <-r.Context.Done():
			return
		}
	}
}

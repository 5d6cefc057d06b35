package metrics

import (
	"net"
	"sync/atomic"

	"nemod/internal/httpd"
	"nemod/status"
)

// Router holds the latest snapshot of a mobile router for scrapes. Update
// is what the event loop calls after a change: it stores a pointer, and
// the families are computed only when a scrape asks.
type Router struct {
	snap atomic.Pointer[status.Router]
	// Registration, when not nil, is published as
	// nemod_registration_duration_seconds; the daemon observes into it.
	Registration *Histogram
}

// Update publishes s. The daemon must not change s's slices or maps
// afterwards: the scrape reads them from another goroutine.
func (r *Router) Update(s status.Router) { r.snap.Store(&s) }

// Families are the router's families now; none before the first Update.
func (r *Router) Families() []Family {
	s := r.snap.Load()
	if s == nil {
		return nil
	}
	return RouterFamilies(*s, r.Registration)
}

// HomeAgent holds the latest snapshot of a home agent for scrapes, as
// Router does for a router.
type HomeAgent struct {
	snap         atomic.Pointer[status.HomeAgent]
	Registration *Histogram
}

// Update publishes s; as with Router.Update, s is not to be changed after.
func (h *HomeAgent) Update(s status.HomeAgent) { h.snap.Store(&s) }

// Families are the home agent's families now; none before the first Update.
func (h *HomeAgent) Families() []Family {
	s := h.snap.Load()
	if s == nil {
		return nil
	}
	return HomeAgentFamilies(*s, h.Registration)
}

// Handler answers a scrape with source's families.
func Handler(source func() []Family) httpd.Handler {
	return func(w *httpd.Response, r *httpd.Request) {
		body, err := Encode(source())
		if err != nil {
			w.Reply(500, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
			return
		}
		w.Header["Cache-Control"] = "no-store"
		w.Reply(200, ContentType, body)
	}
}

// Mount routes /metrics of mux to source's families, for a listener that
// serves more (the home agent's fleet page).
func Mount(mux *httpd.Mux, source func() []Family) {
	mux.Handle("/metrics", Handler(source))
}

// Serve answers scrapes of /metrics on ln until ln is closed (`option
// metrics_listen`). Close the returned server to stop; Serve's error is
// the listener's.
func Serve(ln net.Listener, source func() []Family) (*httpd.Server, <-chan error) {
	mux := httpd.NewMux()
	Mount(mux, source)
	s := httpd.NewServer(mux.Serve)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	return s, done
}

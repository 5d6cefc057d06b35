// Package httpd is the small HTTP/1.1 responder behind /metrics and the
// fleet page. It exists because net/http adds more than a megabyte to the
// one binary a MIPS router with 16 MB of flash carries, for features (keep
// alive, HTTP/2, TLS, request bodies, chunked uploads) that a read-only
// scrape and status page never use.
//
// It serves GET and HEAD only, one request per connection (every response
// says Connection: close), with bounded request heads and deadlines, and
// at most MaxConns connections at once. A response either has a body of
// known length (Reply) or is a stream that ends when the connection does
// (Start, Write, Flush: server-sent events).
package httpd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// MaxHead bounds the request line and headers together.
	MaxHead = 8 << 10
	// MaxConns bounds the connections served at once; a further one is
	// closed unanswered, so that a client that opens many event streams
	// cannot exhaust a router's memory or descriptors.
	MaxConns = 64
	// HeadTimeout bounds the time a client has to send its request head.
	HeadTimeout = 10 * time.Second
	// WriteTimeout bounds each write of a response.
	WriteTimeout = 30 * time.Second
)

// Request is a parsed request head.
type Request struct {
	Method string
	// Path is the decoded path of the target, without its query.
	Path  string
	Query url.Values
	// Header holds each header by its lower-case name (the last one wins
	// where a name repeats).
	Header map[string]string
	// Remote is the client's address; the zero value when the listener
	// is not an IP one (unix sockets in tests).
	Remote netip.AddrPort
	// Context ends when the server closes.
	Context context.Context
}

// Handler answers one request.
type Handler func(w *Response, r *Request)

// Mux routes by exact path.
type Mux struct {
	routes map[string]Handler
}

// NewMux returns a Mux with no routes: every path answers 404.
func NewMux() *Mux { return &Mux{routes: map[string]Handler{}} }

// Handle routes path to h, replacing an earlier route of the same path.
func (m *Mux) Handle(path string, h Handler) { m.routes[path] = h }

// Serve is the Mux's Handler.
func (m *Mux) Serve(w *Response, r *Request) {
	h, ok := m.routes[r.Path]
	if !ok {
		w.Reply(404, "text/plain; charset=utf-8", []byte("not found\n"))
		return
	}
	h(w, r)
}

// Response writes one response on a connection.
type Response struct {
	conn    net.Conn
	bw      *bufio.Writer
	head    bool // HEAD: headers only
	started bool
	status  int
	// Header holds extra response headers, sent by Reply or Start.
	Header map[string]string
}

// Status is the status code sent, 0 before any.
func (w *Response) Status() int { return w.status }

func (w *Response) writeHead(status int, contentType string, length int) error {
	if w.started {
		return errors.New("httpd: response already started")
	}
	w.started = true
	w.status = status
	fmt.Fprintf(w.bw, "HTTP/1.1 %d %s\r\n", status, statusText(status))
	if contentType != "" {
		fmt.Fprintf(w.bw, "Content-Type: %s\r\n", contentType)
	}
	if length >= 0 {
		fmt.Fprintf(w.bw, "Content-Length: %d\r\n", length)
	}
	for _, k := range slices.Sorted(maps.Keys(w.Header)) {
		fmt.Fprintf(w.bw, "%s: %s\r\n", k, w.Header[k])
	}
	w.bw.WriteString("Connection: close\r\n\r\n")
	return nil
}

// Reply sends a whole response with a body of known length.
func (w *Response) Reply(status int, contentType string, body []byte) {
	if err := w.writeHead(status, contentType, len(body)); err != nil {
		return
	}
	if !w.head {
		w.bw.Write(body)
	}
	w.Flush()
}

// Start sends the head of a streamed response: its body is what Write
// sends until the handler returns and the connection closes. It reports
// false for a HEAD request, whose response ends with the head.
func (w *Response) Start(status int, contentType string) bool {
	if err := w.writeHead(status, contentType, -1); err != nil {
		return false
	}
	w.Flush()
	return !w.head
}

// Write adds to a streamed response (Start first).
func (w *Response) Write(p []byte) (int, error) {
	if !w.started {
		return 0, errors.New("httpd: Write before Start")
	}
	if w.head {
		return len(p), nil
	}
	return w.bw.Write(p)
}

// Flush sends what is buffered, within WriteTimeout; an error means the
// client is gone.
func (w *Response) Flush() error {
	w.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	return w.bw.Flush()
}

// Server serves one Handler on listeners until closed.
type Server struct {
	handler Handler
	ctx     context.Context
	cancel  context.CancelFunc
	slots   chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	lns   map[net.Listener]struct{}
	wg    sync.WaitGroup
}

// NewServer returns a Server for h.
func NewServer(h Handler) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{handler: h, ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, MaxConns),
		conns: map[net.Conn]struct{}{}, lns: map[net.Listener]struct{}{}}
}

// Serve accepts on ln until ln fails or the server closes; it returns nil
// after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			<-s.slots
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Close stops the listeners and ends every connection, streams included,
// and waits for their handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.cancel()
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}()
	c.SetReadDeadline(time.Now().Add(HeadTimeout))
	br := bufio.NewReaderSize(io.LimitReader(c, MaxHead+1), 1024)
	w := &Response{conn: c, bw: bufio.NewWriterSize(c, 4096), Header: map[string]string{}}
	req, status, err := ReadRequest(br)
	if err != nil {
		w.Reply(status, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
		return
	}
	c.SetReadDeadline(time.Time{})
	req.Context = s.ctx
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		req.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if req.Method != "GET" && req.Method != "HEAD" {
		w.Header["Allow"] = "GET, HEAD"
		w.Reply(405, "text/plain; charset=utf-8", []byte("only GET and HEAD\n"))
		return
	}
	w.head = req.Method == "HEAD"
	s.handler(w, req)
	if !w.started {
		w.Reply(500, "text/plain; charset=utf-8", []byte("no response\n"))
		return
	}
	w.Flush()
}

// ReadRequest parses a request head from br. On an error it also returns
// the status to answer with.
func ReadRequest(br *bufio.Reader) (*Request, int, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, 400, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || !isToken(method) {
		return nil, 400, fmt.Errorf("malformed request line %q", clip(line))
	}
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return nil, 505, fmt.Errorf("unsupported protocol %q", clip(proto))
	}
	if !strings.HasPrefix(target, "/") {
		return nil, 400, fmt.Errorf("request target %q is not an absolute path", clip(target))
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, 400, fmt.Errorf("bad request target: %v", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, 400, fmt.Errorf("bad query: %v", err)
	}
	req := &Request{Method: method, Path: u.Path, Query: q, Header: map[string]string{}}
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, 400, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || !isToken(name) {
			return nil, 400, fmt.Errorf("malformed header line %q", clip(line))
		}
		req.Header[strings.ToLower(name)] = strings.Trim(value, " \t")
	}
	// No handler reads a body; one announced would be read as the next
	// request by a server that kept the connection, and is refused here.
	if n := req.Header["content-length"]; n != "" && n != "0" {
		return nil, 413, errors.New("request bodies are not accepted")
	}
	if req.Header["transfer-encoding"] != "" {
		return nil, 501, errors.New("transfer encodings are not accepted")
	}
	return req, 0, nil
}

var errHeadTooLong = fmt.Errorf("request head longer than %d bytes", MaxHead)

func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if len(b)+len(frag) >= MaxHead {
					return "", errHeadTooLong
				}
				return "", errors.New("incomplete request head")
			}
			return "", err
		}
		b = append(b, frag...)
		if len(b) > MaxHead {
			return "", errHeadTooLong
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 413:
		return "Content Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

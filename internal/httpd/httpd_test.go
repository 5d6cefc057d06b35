package httpd

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, h Handler) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), s
}

// raw sends req on a fresh connection and returns the whole answer.
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// The end of what the client sends shows as such: a cut-off head is
	// answered, not waited on.
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestRoutesAndErrors(t *testing.T) {
	mux := NewMux()
	var got *Request
	mux.Handle("/a b", func(w *Response, r *Request) {
		got = r
		w.Header["X-Test"] = "1"
		w.Reply(200, "text/plain", []byte("hello"))
	})
	addr, _ := serve(t, mux.Serve)

	// A client other than ours reads the answer: the framing is right.
	resp, err := http.Get("http://" + addr + "/a%20b?token=x%2By&k=v")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("X-Test") != "1" ||
		resp.ContentLength != 5 || !resp.Close {
		t.Fatalf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if got.Path != "/a b" || got.Query.Get("token") != "x+y" || got.Header["user-agent"] == "" ||
		!got.Remote.Addr().IsLoopback() {
		t.Fatalf("request seen as %+v", got)
	}

	for _, c := range []struct{ req, status, body string }{
		{"HEAD /a%20b HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK", ""},
		{"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found", "not found\n"},
		{"POST /a%20b HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed", "only GET and HEAD\n"},
		{"GET /a%20b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 413 Content Too Large", "request bodies are not accepted\n"},
		{"GET /a%20b HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported", ""},
		{"GET a HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"GET /a HTTP/1.1\r\nno colon\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"GET /" + strings.Repeat("a", MaxHead) + " HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", "request head longer than 8192 bytes\n"},
		{"GET /a HTTP/1.1\r\n", "HTTP/1.1 400 Bad Request", "incomplete request head\n"},
	} {
		c := c
		out := raw(t, addr, c.req)
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(head, c.status+"\r\n") || !strings.Contains(head, "Connection: close") {
			t.Errorf("%q: answer %q, want status %q", clip(c.req), out, c.status)
		}
		if c.body != "" && body != c.body {
			t.Errorf("%q: body %q, want %q", clip(c.req), body, c.body)
		}
		if strings.HasPrefix(c.req, "HEAD") && (body != "" || !strings.Contains(head, "Content-Length: 5")) {
			t.Errorf("HEAD answered %q", out)
		}
	}
}

// A stream goes on until the server closes, which ends it and Serve.
func TestStreamEndsOnClose(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan struct{})
	addr, s := serve(t, func(w *Response, r *Request) {
		defer close(ended)
		if !w.Start(200, "text/event-stream") {
			return
		}
		close(started)
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, "data: x\n\n"); err != nil {
				return
			}
			if w.Flush() != nil {
				return
			}
			select {
			case <-r.Context.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /events HTTP/1.1\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q", line)
	}
	<-started
	n := 0
	for n < 3 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "data: x\n" {
			n++
		}
	}
	s.Close()
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("the stream's handler did not return after Close")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
}

// Past MaxConns a connection is closed unanswered; the others are served.
func TestConnectionLimit(t *testing.T) {
	release := make(chan struct{})
	addr, _ := serve(t, func(w *Response, r *Request) {
		if r.Path == "/hold" {
			w.Start(200, "text/plain")
			<-release
			return
		}
		w.Reply(200, "text/plain", []byte("ok"))
	})
	var held []net.Conn
	for i := 0; i < MaxConns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /hold HTTP/1.1\r\n\r\n")
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if l, err := br.ReadString('\n'); err != nil || l != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("held connection %d: %q %v", i, l, err)
		}
		held = append(held, c)
	}
	if out := raw(t, addr, "GET /x HTTP/1.1\r\n\r\n"); out != "" {
		t.Fatalf("connection past the limit answered %q", out)
	}
	close(release)
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := raw(t, addr, "GET /x HTTP/1.1\r\n\r\n")
		if strings.HasSuffix(out, "\r\n\r\nok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the held ones closed: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

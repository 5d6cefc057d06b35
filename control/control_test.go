package control

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTripAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode().Perm())
	}
	go func() {
		for c := range s.Calls() {
			switch c.Cmd {
			case "status":
				c.Reply(map[string]string{"role": "test"}, nil)
			default:
				c.Reply(nil, os.ErrInvalid)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out map[string]string
	if err := Do(ctx, path, "status", nil, &out); err != nil || out["role"] != "test" {
		t.Fatalf("%v %v", out, err)
	}
	if err := Do(ctx, path, "nope", nil, nil); err == nil {
		t.Fatal("unknown command succeeded")
	}
	// A second daemon must not steal a live socket.
	if _, err := Listen(path); err == nil {
		t.Fatal("second listener replaced a live socket")
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("socket left behind")
	}
}

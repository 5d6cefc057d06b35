package ubus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/ubus/ubusvec"
)

// TestReplayCLI repeats every recorded run of the ubus tool with the
// Client's convenience calls (Call, Lookup, Listen, Send, Subscribe,
// WaitFor, Monitor), against the recorded ubusd side: the Client must send
// the tool's bytes, end with the status the tool's exit code tells, and
// what it received, printed the way the tool prints, must be the tool's
// output.
func TestReplayCLI(t *testing.T) {
	n := 0
	for _, f := range allVectorFiles(t) {
		cli, ok := ubusvec.ParseCLI(f.Command)
		if !ok || f.ExitCode == nil {
			continue
		}
		n++
		t.Run(f.Name, func(t *testing.T) { replayCLI(t, f, cli) })
	}
	// 32 in each recording (the netifd handler's own runs of the tool
	// have no exit code recorded; the generic replay covers them).
	if n != 64 {
		t.Errorf("%d runs of the ubus tool replayed, want 64", n)
	}
}

// wantStatus turns the tool's exit code into the status it reports: a
// failed call exits with 256 - status, a failed lookup or send with the
// status itself (the vectors' README).
func wantStatus(exit int, invoked bool) Status {
	switch {
	case exit == 0:
		return StatusOK
	case invoked:
		return Status(256 - exit)
	}
	return Status(exit)
}

func replayCLI(t *testing.T, f *ubusvec.File, cli ubusvec.CLI) {
	plan, msgs := planFile(t, f)
	fake := newFake(t, f.Name, f.Frames, plan)
	c, err := Connect(context.Background(), Options{Dial: fake.dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	invoked := false
	for i, m := range msgs {
		if f.Frames[i].C2S && m.Type == MsgInvoke {
			invoked = true
		}
	}
	want := wantStatus(*f.ExitCode, invoked && cli.Verb == "call")
	var out strings.Builder
	var mu sync.Mutex
	print := func(s string) {
		mu.Lock()
		out.WriteString(s)
		mu.Unlock()
	}
	check := func(err error) {
		t.Helper()
		if statusOf(err) != want || (err != nil && !errors.Is(err, want)) {
			t.Errorf("ended with %v, the tool with %v (exit %d)", err, want, *f.ExitCode)
		}
	}
	arg := func(i int) Table {
		if len(cli.Args) <= i {
			return nil
		}
		tab, err := ParseJSON(cli.Args[i])
		if err != nil {
			t.Fatalf("%q: %v", cli.Args[i], err)
		}
		return tab
	}
	switch cli.Verb {
	case "call":
		if *f.ExitCode == 244 {
			// The tool could not parse its argument and sent nothing.
			if _, err := ParseJSON(cli.Args[2]); err == nil {
				t.Errorf("%q parsed", cli.Args[2])
			}
			break
		}
		data, err := c.Call(ctx, cli.Args[0], cli.Args[1], arg(2))
		check(err)
		if data != nil {
			print(FormatJSON(data, true) + "\n")
		}
	case "list":
		path := ""
		if len(cli.Args) > 0 {
			path = cli.Args[0]
		}
		objs, err := c.Lookup(ctx, path)
		check(err)
		for _, o := range objs {
			if !cli.Verbose {
				print(o.Path + "\n")
				continue
			}
			print(fmt.Sprintf("'%s' @%08x\n", o.Path, o.ID))
			for _, m := range o.Signature {
				var args []string
				for _, a := range m.Args {
					args = append(args, fmt.Sprintf("%q:%q", a.Name, cliTypeName(a.Type)))
				}
				print(fmt.Sprintf("\t%q:{%s}\n", m.Name, strings.Join(args, ",")))
			}
		}
	case "listen":
		_, err := c.Listen(ctx, func(e Event) {
			print(`{ "` + e.Name + `": ` + FormatJSON(e.Data, false) + " }\n")
		}, cli.Args...)
		check(err)
	case "send":
		check(c.Send(ctx, cli.Args[0], arg(1)))
	case "subscribe":
		_, err := c.Subscribe(ctx, cli.Args[0], func(n Notification) {
			print(`{ "` + n.Method + `": ` + FormatJSON(n.Data, false) + " }\n")
		}, nil)
		check(err)
	case "wait_for":
		check(c.WaitFor(ctx, cli.Args...))
	case "monitor":
		check(c.Monitor(ctx, func(m MonitorMessage) {
			dir := "<-"
			if m.Sent {
				dir = "->"
			}
			// The tool's layout; the attributes it prints after the colon
			// are its own rendering and not compared.
			print(fmt.Sprintf("%s %08x #%08x %14s:\n", dir, m.Client, m.Msg.Peer, strings.ToLower(m.Msg.Type.String())))
		}))
		// The tool stops monitoring when interrupted: here, once the
		// recording comes to the "remove" call.
		stop := -1
		for i, m := range msgs {
			if meth, _ := m.Method(); f.Frames[i].C2S && meth == "remove" {
				stop = i
			}
		}
		if !fake.waitPos(stop) {
			break
		}
		check(c.StopMonitor(ctx))
	default:
		t.Fatalf("no replay for %q", cli.Verb)
	}
	fake.finish(c)
	got := out.String()
	if cli.Verb == "monitor" {
		var lines []string
		for _, l := range strings.SplitAfter(f.Stdout, "\n") {
			if i := strings.Index(l, ": "); i >= 0 {
				l = l[:i+1] + "\n"
			}
			lines = append(lines, l)
		}
		f.Stdout = strings.Join(lines, "")
	}
	if got != f.Stdout {
		t.Errorf("printed\n%s\nthe tool printed\n%s", got, f.Stdout)
	}
}

// cliTypeName is how `ubus -v list` names argument types.
func cliTypeName(t Type) string {
	switch t {
	case TypeInt8:
		return "Boolean"
	case TypeInt32:
		return "Integer"
	case TypeString:
		return "String"
	case TypeArray:
		return "Array"
	case TypeTable:
		return "Table"
	}
	return "(unknown)"
}

// TestReplayTruncated replays the two recordings that were cut short (the
// example client sends notifications in a loop until killed): up to where
// the recording ends, every byte must match; the client's last
// notification is left waiting for answers the recording no longer holds.
func TestReplayTruncated(t *testing.T) {
	for _, f := range allVectorFiles(t) {
		if f.Truncated == 0 {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			d := newDriver(t, f)
			d.run()
		})
	}
}

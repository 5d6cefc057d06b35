// Command nemolab builds the network-namespace lab of package lab by hand.
//
//	nemolab demo [-nemod bin/nemod] [-keep]      the demo of `make demo`
//	nemolab up [-prefix P] [-no-radvd] [-keep]   build the lab, wait for Ctrl-C, tear down
//	nemolab sweep                                remove what killed runs left behind
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"nemod/lab"
)

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = demo(os.Args[2:])
	case "up":
		err = up(os.Args[2:])
	case "sweep":
		err = sweep(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "nemolab: unknown command %q\n", os.Args[1])
		usage()
	}
	if err != nil {
		log.Fatalf("nemolab %s: %v", os.Args[1], err)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  nemolab demo [-nemod bin/nemod] [-keep]      show nemod at work in the lab
  nemolab up [-prefix P] [-no-radvd] [-keep]   build the lab, wait for Ctrl-C, tear down
  nemolab sweep                                remove labs whose creator died
`)
	os.Exit(2)
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	prefix := fs.String("prefix", "", "namespace name prefix (default: nl + a random run id)")
	noRadvd := fs.Bool("no-radvd", false, "static addresses on mr wlan0 instead of radvd and SLAAC")
	keep := fs.Bool("keep", false, "keep the lab's directory (logs, captures) on exit")
	quiet := fs.Bool("q", false, "no progress messages")
	_ = fs.Parse(args)

	opts := lab.Options{Prefix: *prefix, NoRadvd: *noRadvd, KeepDir: *keep}
	if !*quiet {
		opts.Logf = log.Printf
	}
	// Ctrl-C while the lab is being built cancels New, which tears down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	l, err := lab.New(ctx, opts)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			os.Exit(130) // New has torn down what it built
		}
		return err
	}
	defer lab.CleanupOnSignal(l)()

	for _, role := range lab.Roles {
		fmt.Printf("%-5s %s\n", role, l.NS(role))
	}
	fmt.Printf("dir   %s\n", l.Dir())
	fmt.Printf("enter a node with: ip netns exec %s bash   (Ctrl-C here tears the lab down)\n", l.NS(lab.MR))
	select {}
}

func sweep(args []string) error {
	fs := flag.NewFlagSet("sweep", flag.ExitOnError)
	_ = fs.Parse(args)
	return lab.Sweep()
}

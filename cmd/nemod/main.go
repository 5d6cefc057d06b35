// Command nemod is the one binary of the project: the mobile router, the
// home agent, their control client and the configuration checker.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "dev"

const usage = `nemod: NEMO mobile router and home agent

usage:
  nemod router -c FILE         run the mobile router
  nemod homeagent -c FILE      run the home agent
  nemod ctl -s SOCKET COMMAND  talk to a running daemon (status, flows, reload, memstats; --json)
  nemod ctl -s SOCKET revoke HOME-ADDRESS|NAI [--bid N] [--reason administrative]
                               revoke a mobile router's bindings (home agent, RFC 5846)
  nemod ctl -s SOCKET switch HOME-ADDRESS|NAI|all --to ADDRESS
                               move routers to another home agent (RFC 5142)
  nemod ctl -s SOCKET drain [--to ADDRESS]
                               move every router off this home agent before it stops
  nemod check-config -c FILE   validate a configuration file
  nemod version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	var code int
	switch os.Args[1] {
	case "router":
		code = runDaemon("router", args)
	case "homeagent", "home-agent":
		code = runDaemon("homeagent", args)
	case "ctl":
		code = ctl(args)
	case "check-config":
		code = checkConfig(args)
	case "version", "--version":
		fmt.Println("nemod", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "nemod: unknown command %q\n\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}

// signalContext is cancelled by nothing: the daemons watch SIGTERM, SIGINT
// and SIGHUP themselves, so that SIGTERM can de-register before exiting.
func signalContext() context.Context {
	signal.Ignore(syscall.SIGPIPE)
	return context.Background()
}

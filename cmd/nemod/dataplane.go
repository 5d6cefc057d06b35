package main

import (
	"nemod/homeagent"
	"nemod/router"
)

// The data plane arrives with the data plane issue; until then the
// daemons run signalling only.
var (
	newRouterForwarder func(*router.Daemon) (router.Forwarder, error)
	newHAForwarder     func(*homeagent.Daemon) (homeagent.Forwarder, error)
)

//go:build !routeronly

package router

import (
	"nemod/dbusapi"
	"nemod/status"
)

func busAvailable() bool { return dbusapi.SystemBusAvailable() }

func startBus(reload func() (status.Reload, error), logf func(string, ...any)) routerBus {
	return dbusapi.NewRouter(dbusapi.Config{Reload: reload, Logf: logf})
}

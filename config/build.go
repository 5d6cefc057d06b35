//go:build !routeronly

package config

// routerOnly is false in the full build: it decodes the sections of both
// roles (build_routeronly.go has the router-only build's side).
const routerOnly = false

// refuseAgent is never called in this build (load.go calls it only when
// routerOnly); it is here so that the call compiles in both.
func (d *decoder) refuseAgent(...[]*section) {}

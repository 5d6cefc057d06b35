//go:build !routeronly

package config

// routerOnly is false in the full build: it decodes the sections of both
// roles.
const routerOnly = false

func (d *decoder) refuseAgent(...[]*section) {}

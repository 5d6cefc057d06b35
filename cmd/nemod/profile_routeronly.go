//go:build routeronly

package main

import "flag"

// profileFlag: the router-only build has no profiler (see profile.go).
func profileFlag(*flag.FlagSet) func() (func(), error) {
	return func() (func(), error) { return func() {}, nil }
}

//go:build routeronly

package config

// routerOnly is true in the router-only build (OpenWrt): it runs no home
// agent, so the decoders of the home agent's sections (homeagent,
// mobile_router, radius, pd_pool and their IPv4, prefix delegation and
// fleet options), which the linker keeps only while Parse can reach them,
// are left out: about 50 KB of a router's flash. A file with those
// sections is an error here, at each one's line, not half a
// configuration.
const routerOnly = true

// refuseAgent reports every home agent section of the file.
func (d *decoder) refuseAgent(groups ...[]*section) {
	for _, g := range groups {
		for _, x := range g {
			d.errorf(x.s.Line, "section %s: this is the router-only build (OpenWrt), which has no home agent; the home agent runs from the full build", x.s.Type)
		}
	}
}

package main

import (
	"fmt"
	"regexp"
	"strconv"
)

// Versions is one release's version in each packaging's spelling.
type Versions struct {
	Upstream string // what `nemod version` prints: 0.1.0, 0.1.0+git12
	OpenWrt  string // ipk and apk: 0.1.0-r1, 0.1.0_git12-r1 (apk's grammar)
	Debian   string // 0.1.0, 0.1.0+git12 (a native package: no revision)
}

// baseVersion is the version before the first tag.
const baseVersion = "0.1.0"

var describeRE = regexp.MustCompile(`^v?([0-9]+\.[0-9]+\.[0-9]+)(?:-([0-9]+)-g[0-9a-f]+)?$`)

// versionsFrom derives the versions from `git describe --tags --long
// --match v*` output, or, with no tag ("" describe), from the number of
// commits: a tagged commit is the tag's version; later commits add their
// count since it, as a suffix every format sorts after the release.
func versionsFrom(describe string, commits int) (Versions, error) {
	base, n := baseVersion, commits
	if describe != "" {
		m := describeRE.FindStringSubmatch(describe)
		if m == nil {
			return Versions{}, fmt.Errorf("git describe %q is not vX.Y.Z[-N-gHASH]", describe)
		}
		base, n = m[1], 0
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
	}
	if n == 0 {
		return Versions{Upstream: base, OpenWrt: base + "-r1", Debian: base}, nil
	}
	s := strconv.Itoa(n)
	return Versions{Upstream: base + "+git" + s, OpenWrt: base + "_git" + s + "-r1", Debian: base + "+git" + s}, nil
}

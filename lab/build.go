package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Build builds this module's ./cmd/nemod into dir and returns the binary's
// path; race adds the race detector.
func Build(ctx context.Context, dir string, race bool) (string, error) {
	return BuildPackage(ctx, dir, "./cmd/nemod", race)
}

// BuildPackage builds a main package of this module, given relative to the
// module root (e.g. "./cmd/nemolab"), into dir, and returns the binary's
// path. The binary is named after the package, with "-race" added when
// race is set, so both builds can share dir.
func BuildPackage(ctx context.Context, dir, pkg string, race bool) (string, error) {
	gomod, err := runOut(ctx, "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("lab: not inside a Go module")
	}
	name := path.Base(pkg)
	if race {
		name += "-race"
	}
	out, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = os.Environ()
	if race {
		// The race detector needs cgo, which a CGO_ENABLED=0 from the
		// environment (as for static release builds) would turn off.
		cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lab: go build %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

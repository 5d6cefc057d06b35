package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The wireguard-go the comparison is made with, from the Go module proxy:
// the kernel here has no wireguard module, so the userspace one is what a
// user of this machine would run.
const (
	wireguardGoModule  = "golang.zx2c4.com/wireguard"
	wireguardGoVersion = "v0.0.0-20260522210424-ecfc5a8d5446"
)

// wireguardGo returns the wireguard-go binary: the one given, else the one
// `go install` puts in GOBIN (named "wireguard" after its module), built
// there first if missing, so later runs find it.
func wireguardGo(given string) (string, error) {
	if given != "" {
		if !isWireguardGo(given) {
			return "", fmt.Errorf("%s does not run as wireguard-go --version", given)
		}
		return filepath.Abs(given)
	}
	gobin := goEnv("GOBIN")
	if gobin == "" {
		gopath, _, _ := strings.Cut(goEnv("GOPATH"), string(os.PathListSeparator))
		if gopath == "" {
			return "", fmt.Errorf("go env GOPATH is empty")
		}
		gobin = filepath.Join(gopath, "bin")
	}
	bin := filepath.Join(gobin, "wireguard")
	if isWireguardGo(bin) {
		return bin, nil
	}
	fmt.Printf("building wireguard-go (%s@%s) into %s\n", wireguardGoModule, wireguardGoVersion, gobin)
	cmd := exec.Command("go", "install", wireguardGoModule+"@"+wireguardGoVersion)
	// Outside this module, so that its go.mod and a go.work play no part.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install wireguard-go: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if !isWireguardGo(bin) {
		return "", fmt.Errorf("go install left no working wireguard-go at %s", bin)
	}
	return bin, nil
}

func isWireguardGo(bin string) bool {
	out, err := exec.Command(bin, "--version").Output()
	return err == nil && strings.HasPrefix(string(out), "wireguard-go ")
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func numCPU() int { return runtime.NumCPU() }

// printMachine says what the figures were measured on, for BENCHMARKS.md.
func printMachine(o options) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) >= 2 {
			var kb int
			fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf(", %d GiB", (kb+(1<<19))>>20)
		}
	}
	kernel := firstLine("uname", "-r")
	fmt.Printf("machine:      %s, %d cores%s, kernel %s\n", model, numCPU(), mem, kernel)
	fmt.Printf("tools:        %s, %s", firstLine("iperf3", "--version"), runtime.Version())
	if o.wgBin != "" {
		fmt.Printf(", %s (%s)", firstLine(o.wgBin, "--version"), o.wgBin)
	}
	fmt.Println()
	fmt.Printf("cases:        %s; one TCP stream, %d s each way, %d run(s)\n", strings.Join(o.cases, ", "), int(o.dur.Seconds()), o.repeat)
	if o.features != "" {
		fmt.Printf("veth:         ethtool -K DEV %s on every veth\n", o.features)
	}
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return name + " (unknown version)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

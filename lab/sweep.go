package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RunDir holds one record per live lab, <prefix>.pid, naming the process
// that created it. Sweep trusts namespaces whose creator still runs.
const RunDir = "/run/nemolab"

const netnsDir = "/run/netns"

// defaultName matches the namespace names of labs with the default prefix.
var defaultName = regexp.MustCompile(`^(nl[0-9a-f]{6})-(lan|mr|wifi|cell|core|ha|cn|mr2|lan2|ha[123]|e[123]|eh)$`)

// writePidFile records the lab before it creates anything, and reserves its
// prefix: O_EXCL fails if another lab uses it.
func (l *Lab) writePidFile() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	pid := os.Getpid()
	st, err := procStart(pid)
	if err != nil {
		return err
	}
	path := filepath.Join(RunDir, l.prefix+".pid")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("lab: prefix %s in use? %w", l.prefix, err)
	}
	l.pidFile = path
	_, err = fmt.Fprintf(f, "pid %d\nstart %d\ndir %s\n", pid, st, l.dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// procStart returns the start time of a process (in clock ticks since
// boot), which tells it apart from a later process given the same pid.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("lab: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// Field 22 of stat; f[0] is field 3.
	if len(f) < 20 {
		return 0, errors.New("lab: short /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

type runRecord struct {
	pid   int
	start uint64
	dir   string
}

func readRecord(path string) (runRecord, error) {
	var r runRecord
	f, err := os.Open(path)
	if err != nil {
		return r, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "pid":
			r.pid, _ = strconv.Atoi(v)
		case "start":
			r.start, _ = strconv.ParseUint(v, 10, 64)
		case "dir":
			r.dir = v
		}
	}
	return r, sc.Err()
}

// alive reports whether the record's creator still runs.
func (r runRecord) alive() bool {
	if r.pid <= 0 {
		return false
	}
	if err := syscall.Kill(r.pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := procStart(r.pid)
	if err != nil {
		return false
	}
	return r.start == 0 || st == r.start
}

// Sweep deletes what labs whose creating process is dead left behind: the
// processes in their namespaces, the namespaces, their temporary
// directories and records. It also deletes namespaces named like a
// default-prefix lab's that have no record at all. Labs of live processes,
// this one's included, are left alone.
func Sweep() error {
	var errs []error
	recs, _ := filepath.Glob(filepath.Join(RunDir, "*.pid"))
	for _, path := range recs {
		prefix := strings.TrimSuffix(filepath.Base(path), ".pid")
		r, err := readRecord(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if r.alive() {
			continue
		}
		var names []string
		for _, role := range append(append(slices.Clone(Roles), fleetRoles...), clusterRoles...) {
			names = append(names, prefix+"-"+role)
		}
		if err := killNamespaces(names); err != nil {
			errs = append(errs, err)
			continue
		}
		// Only a directory New made: the record could have been edited.
		if r.dir != "" && strings.HasPrefix(filepath.Base(r.dir), "nemolab-"+prefix+"-") {
			if err := os.RemoveAll(r.dir); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}

	ents, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	var orphans []string
	for _, e := range ents {
		m := defaultName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		// Checked after listing the namespaces: New writes the record
		// before its first namespace and Close removes it after the last,
		// so a namespace listed earlier with no record now is an orphan.
		if _, err := os.Stat(filepath.Join(RunDir, m[1]+".pid")); err == nil {
			continue
		}
		orphans = append(orphans, e.Name())
	}
	if err := killNamespaces(orphans); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killNamespaces kills every process in the named namespaces, waits up to
// 2 s for them to go, and deletes the namespaces. Names that do not exist
// are skipped.
func killNamespaces(names []string) error {
	var existing []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
			existing = append(existing, n)
		}
	}
	if len(existing) == 0 {
		return nil
	}
	var errs []error
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := nsPids(existing)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// Deleted all the same: the name goes, the namespace lives on
			// until they die.
			errs = append(errs, fmt.Errorf("lab: processes %v in %v would not die", pids, existing))
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var script strings.Builder
	for _, n := range existing {
		fmt.Fprintf(&script, "netns delete %s\n", n)
	}
	// -force: one failure must not keep the other namespaces.
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		// A concurrent Sweep may have deleted some first: only what is
		// still there is a failure.
		for _, n := range existing {
			if _, serr := os.Stat(filepath.Join(netnsDir, n)); serr == nil {
				errs = append(errs, fmt.Errorf("lab: deleting namespace %s: %w: %s", n, err, bytes.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

// nsPids lists the processes in any of the named namespaces, as `ip netns
// pids` does: those whose /proc/PID/ns/net is the namespace's nsfs inode.
// Zombies have no namespace left and are not listed.
func nsPids(names []string) []int {
	type key struct{ dev, ino uint64 }
	want := map[key]bool{}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, n), &st); err == nil {
			want[key{uint64(st.Dev), uint64(st.Ino)}] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if want[key{uint64(st.Dev), uint64(st.Ino)}] {
			pids = append(pids, pid)
		}
	}
	return pids
}

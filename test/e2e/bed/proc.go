package bed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stateRoot is the directory under which every cluster keeps its files.
func stateRoot() string {
	return filepath.Join(os.TempDir(), "liberator-bed")
}

// lockFile takes an exclusive flock on path, creating it if needed, and
// returns the function that releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// processIdentity names a running process by its pid and start time, so that
// a reused pid is not taken for the process that wrote it.
func processIdentity(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may contain spaces; fields after it are
	// separated by single spaces. Field 22 is the start time.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 20 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Itoa(pid) + " " + fields[19], nil
}

// ownerFile records in a cluster directory which process owns it.
const ownerFile = "owner"

func writeOwner(dir string) error {
	id, err := processIdentity(os.Getpid())
	if err != nil {
		return fmt.Errorf("identify this process: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(id), 0o644)
}

// ownerAlive reports whether the process that created dir still runs.
func ownerAlive(dir string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		// Written right after the directory is created: a directory without
		// it is either being created right now or was abandoned at once.
		st, serr := os.Stat(dir)
		return serr == nil && time.Since(st.ModTime()) < time.Minute
	}
	pid, err := strconv.Atoi(strings.Fields(string(raw) + " x")[0])
	if err != nil {
		return false
	}
	id, err := processIdentity(pid)
	return err == nil && id == strings.TrimSpace(string(raw))
}

// pidFiles lists the pid files of every process a cluster directory started:
// the kwokctl-managed control plane, the per-node kwok processes and agents.
func pidFiles(dir string) []string {
	a, _ := filepath.Glob(filepath.Join(dir, "kwok", "clusters", "*", "pids", "*.pid"))
	b, _ := filepath.Glob(filepath.Join(dir, "nodes", "*.pid"))
	return append(a, b...)
}

// recordedPIDs lists the processes recorded in pid files under dir whose
// command line still mentions dir (a pid may have been reused since).
func recordedPIDs(dir string) []int {
	var pids []int
	for _, f := range pidFiles(dir) {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// killPIDs kills the process groups led by pids at once (SIGKILL; every
// process the bed or kwokctl starts leads its own group) and waits for their
// leaders to go.
func killPIDs(pids []int) error {
	for _, pid := range pids {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill process group %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := slices.DeleteFunc(slices.Clone(pids), func(pid int) bool { return !processExists(pid) })
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still there 10s after SIGKILL", alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processExists reports whether pid names a process that has not exited
// (a zombie counts as exited).
func processExists(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(raw, ')')
	return i < 0 || i+2 >= len(raw) || raw[i+2] != 'Z'
}

// reapStale stops the processes of clusters whose owning process is gone
// (a test binary killed before its cleanup ran) and removes their files.
func reapStale(logf func(string, ...any)) {
	entries, err := os.ReadDir(stateRoot())
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(stateRoot(), e.Name())
		if !e.IsDir() || ownerAlive(dir) {
			continue
		}
		if err := killPIDs(recordedPIDs(dir)); err != nil {
			logf("bed: reaping %s: %v", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			logf("bed: reaping %s: %v", dir, err)
			continue
		}
		logf("bed: removed leftovers of an abandoned cluster in %s", dir)
	}
	// The networks of isolated nodes (netns.go) whose cluster is gone.
	if len(bedSlots()) > 0 {
		unlock, err := lockFile(filepath.Join(stateRoot(), "net.lock"))
		if err != nil {
			logf("bed: %v", err)
			return
		}
		defer unlock()
		reapNetworks(logf)
	}
}

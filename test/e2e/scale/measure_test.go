//go:build e2e

package scale

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// procSample is what /proc says about a process at one moment.
type procSample struct {
	at       time.Time
	rssKB    int64 // VmRSS
	hwmKB    int64 // VmHWM: the peak resident set so far
	cpuTicks int64 // utime + stime, in clock ticks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.rssKB = v
		case "VmHWM:":
			s.hwmKB = v
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are fields 14 and 15 of the line, 12 and 13 after ") ".
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return s, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpuTicks = ut + st
	return s, nil
}

// cpuShare is the CPU used between two samples, in cores (1.0 = one core
// busy all the time).
func cpuShare(a, b procSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.cpuTicks-a.cpuTicks) / clockTicks / d
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// logGap is the time between the first klog lines containing from and to
// in a log ("I1202 05:46:53.396945 ..."), or -1 when either is missing.
func logGap(log, from, to string) time.Duration {
	at := func(msg string) (time.Time, bool) {
		for line := range strings.SplitSeq(log, "\n") {
			if !strings.Contains(line, msg) || len(line) < 21 {
				continue
			}
			t, err := time.Parse("15:04:05.000000", line[6:21])
			return t, err == nil
		}
		return time.Time{}, false
	}
	a, ok1 := at(from)
	b, ok2 := at(to)
	if !ok1 || !ok2 {
		return -1
	}
	return b.Sub(a)
}

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	AuditID string `json:"auditID"`
	Stage   string `json:"stage"`
	Verb    string `json:"verb"`
	User    struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	RequestURI string    `json:"requestURI"`
	Received   time.Time `json:"requestReceivedTimestamp"`
}

// key names the request's verb and resource, e.g. "list nodes",
// "patch nodes/status", "get /readyz".
func (e auditEvent) key() string {
	if e.ObjectRef == nil {
		u, _, _ := strings.Cut(e.RequestURI, "?")
		return e.Verb + " " + u
	}
	r := e.ObjectRef.Resource
	if e.ObjectRef.APIGroup != "" {
		r += "." + e.ObjectRef.APIGroup
	}
	if e.ObjectRef.Subresource != "" {
		r += "/" + e.ObjectRef.Subresource
	}
	return e.Verb + " " + r
}

// requestCounts counts one user's requests received in [from, to), by verb
// and resource, each request once (the audit log records a request at
// every stage it reaches).
type requestCounts map[string]int

// String lists the counts, most first: "list pods 1, watch nodes 1".
func (c requestCounts) String() string {
	keys := slices.Sorted(maps.Keys(c))
	slices.SortStableFunc(keys, func(a, b string) int { return c[b] - c[a] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

func (c requestCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// countRequests reads an audit log and counts, per user, the requests
// received in [from, to).
func countRequests(path string, from, to time.Time) (map[string]requestCounts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	return parseAudit(f, from, to)
}

func parseAudit(r io.Reader, from, to time.Time) (map[string]requestCounts, error) {
	out := map[string]requestCounts{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if e.Received.Before(from) || !e.Received.Before(to) || seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true
		if out[e.User.Username] == nil {
			out[e.User.Username] = requestCounts{}
		}
		out[e.User.Username][e.key()]++
	}
	return out, sc.Err()
}

// requestRows renders two users' counts over a window side by side, as
// requests per second by verb and resource.
func requestRows(a, b requestCounts, window time.Duration) []string {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	rows := []string{}
	s := window.Seconds()
	for _, k := range keys {
		rows = append(rows, fmt.Sprintf("  %-44s %10.3f %10.3f", k, float64(a[k])/s, float64(b[k])/s))
	}
	rows = append(rows, fmt.Sprintf("  %-44s %10.3f %10.3f", "all", float64(a.total())/s, float64(b.total())/s))
	return rows
}

package config

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Problem is what is wrong with a file as it is written: its YAML, a field
// that does not exist, a value of the wrong type. Field is the field's path
// ("" for the file as a whole); Line is where it is written (0: unknown).
type Problem struct {
	Line  int
	Field string
	Msg   string
}

func (p *Problem) Error() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + ": " + p.Msg
}

// Limits of a refusal's message: values are cut to maxValueLen bytes, a line
// to maxLineLen, and at most maxShown problems (and maxMessageLen bytes) are
// printed, followed by how many more were found.
const (
	maxValueLen   = 64
	maxLineLen    = 400
	maxShown      = 10
	maxMessageLen = 1900
	// maxKept bounds the problems kept in memory; the rest are counted.
	maxKept = 100
)

// Error is a refused configuration: every problem found, each with the line
// of the file it is on when known. Its message is one line for one problem
// and, for more, a count followed by the first few, one per line.
type Error struct {
	// File is the path of the file, when it was read from one.
	File string
	// Problems are *Problem and *FieldError values, in the order of the
	// file.
	Problems []error
	// More counts the problems found beyond Problems.
	More int
	// LineOffset is added to the lines printed: the line before the
	// file's first in the file that embeds it (a ConfigMap manifest).
	LineOffset int

	lines map[string]int // a field's path → the line it is written on
}

// Unwrap returns the problems, so that errors.As finds a *FieldError.
func (e *Error) Unwrap() []error { return e.Problems }

func (e *Error) add(err error) {
	if len(e.Problems) < maxKept {
		e.Problems = append(e.Problems, err)
	} else {
		e.More++
	}
}

// count is how many problems were found.
func (e *Error) count() int { return len(e.Problems) + e.More }

// orNil returns e, or nil when it holds no problem.
func (e *Error) orNil() error {
	if e == nil || e.count() == 0 {
		return nil
	}
	return e
}

// line is the line of the file a problem is on: its own, or that of the
// field, or of the nearest enclosing field written in the file.
func (e *Error) line(err error) int {
	switch p := err.(type) {
	case *Problem:
		if p.Line > 0 {
			return p.Line
		}
		return e.lineOf(p.Field)
	case *FieldError:
		return e.lineOf(p.Field)
	}
	return 0
}

func (e *Error) lineOf(path string) int {
	for path != "" {
		if l, ok := e.lines[path]; ok {
			return l
		}
		path = parent(path)
	}
	return 0
}

// parent is the path of the field that holds path ("" at the top).
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// sortByLine orders the problems as the file does: those of the file as a
// whole first.
func (e *Error) sortByLine() {
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.line(e.Problems[i]) < e.line(e.Problems[j]) })
}

func (e *Error) text(err error) string {
	s := err.Error()
	if l := e.line(err); l > 0 {
		s = fmt.Sprintf("line %d: %s", l+e.LineOffset, s)
	}
	return cut(strings.ReplaceAll(s, "\n", " "), maxLineLen)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString("config " + cut(e.File, 4*maxValueLen) + ": ")
	}
	if e.count() == 1 && len(e.Problems) == 1 {
		b.WriteString(e.text(e.Problems[0]))
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", e.count())
	shown := 0
	for i, p := range e.Problems {
		line := "\n  " + e.text(p)
		last := i == len(e.Problems)-1 && e.More == 0
		if shown == maxShown-1 && !last || b.Len()+len(line) > maxMessageLen {
			break
		}
		b.WriteString(line)
		shown++
	}
	if rest := e.count() - shown; rest > 0 {
		fmt.Fprintf(&b, "\n  and %d more", rest)
	}
	return b.String()
}

// cut shortens s to at most n bytes, marking the cut with "...".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

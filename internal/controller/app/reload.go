package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/internal/metrics"
)

// DefaultConfigReloadInterval is how often the controller reads its config
// file for a change (--config-reload-interval).
const DefaultConfigReloadInterval = 2 * time.Second

// liveConfig is what a reload changes: the controller's configuration.
type liveConfig interface {
	Config() *config.Config
	SetConfig(*config.Config) error
}

// reloader reads the config file every interval and, when its content
// changed, loads it exactly as at start (Options.Load: the file, then the
// flags that were set, then validation) and applies it to the running
// controller. A change that fails, or that needs a restart, is refused
// with one error line naming the field; the configuration in force is
// kept. Reading the content (rather than watching the file) works on every
// filesystem and through a ConfigMap volume's ..data symlink swap.
type reloader struct {
	o      *Options
	fs     *pflag.FlagSet
	target liveConfig
	m      *metrics.Metrics
	log    logr.Logger
	now    func() time.Time

	// inForce is the hash of the content in force; seen that of the
	// content last looked at (a refused one is not looked at again until
	// the file changes).
	inForce, seen string
}

// startReloader publishes the configuration loaded at start (its hash,
// from Options.Load) and, unless --config-reload-interval is 0 or there is
// no --config, polls the file until ctx ends.
func startReloader(ctx context.Context, o *Options, target liveConfig, m *metrics.Metrics, log logr.Logger) {
	r := newReloader(o, target, m, log)
	if o.ConfigPath == "" || o.ConfigReloadInterval <= 0 {
		r.log.Info("the config file is not reloaded while running", "file", o.ConfigPath, "hash", r.inForce)
		return
	}
	r.log.Info("watching the config file for changes", "file", o.ConfigPath, "hash", r.inForce, "interval", o.ConfigReloadInterval)
	go r.run(ctx, o.ConfigReloadInterval)
}

// newReloader starts the metrics with the configuration loaded at start
// (hash is that of its content, Options.Load).
func newReloader(o *Options, target liveConfig, m *metrics.Metrics, log logr.Logger) *reloader {
	fs := o.flags
	if fs == nil { // Run without Load: no flag was set
		fs = pflag.NewFlagSet("controller", pflag.ContinueOnError)
	}
	r := &reloader{o: o, fs: fs, target: target, m: m, log: log.WithName("config"), now: time.Now,
		inForce: o.configHash, seen: o.configHash}
	m.SetConfigHash(r.inForce)
	m.ConfigLastReloadSuccessful.Set(1)
	m.ConfigLastReloadSuccess.Set(float64(r.now().Unix()))
	return r
}

// run polls until ctx ends.
func (r *reloader) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.poll()
		}
	}
}

// poll looks at the file once and applies or refuses a change.
func (r *reloader) poll() {
	path := r.o.ConfigPath
	h, err := contentHash(path)
	if err != nil {
		// Missing or unreadable: a change that cannot be applied. It is
		// reported once, not at every poll.
		if r.seen != err.Error() {
			r.seen = err.Error()
			r.refuse(fmt.Errorf("config: cannot read %s: %w", path, err), path, "")
		}
		return
	}
	if h == r.seen {
		return
	}
	r.seen = h
	if h == r.inForce {
		r.m.ConfigLastReloadSuccessful.Set(1)
		r.log.Info("the configuration file is back to the configuration in force", "file", path, "hash", h)
		return
	}
	cur := r.target.Config()
	next, err := r.o.load(r.fs)
	if again, _ := contentHash(path); again != h {
		r.seen = "" // changed while it was read: look again at the next poll
		return
	}
	if err == nil {
		err = restartNeeded(cur, next)
	}
	if err == nil {
		err = r.target.SetConfig(next)
	}
	if err != nil {
		r.refuse(err, path, h)
		return
	}
	r.inForce = h
	r.m.ConfigReloads.WithLabelValues("applied").Inc()
	r.m.ConfigLastReloadSuccessful.Set(1)
	r.m.ConfigLastReloadSuccess.Set(float64(r.now().Unix()))
	r.m.SetConfigHash(h)
	r.log.Info("configuration reloaded", "file", path, "hash", h, "changed", strings.Join(changes(cur, next), ", "))
}

// refuse counts and logs a refused change, on one line.
func (r *reloader) refuse(err error, path, hash string) {
	r.m.ConfigReloads.WithLabelValues("refused").Inc()
	r.m.ConfigLastReloadSuccessful.Set(0)
	r.log.Error(errors.New(oneLine(err.Error())), "configuration change refused; the running configuration is kept",
		"file", path, "hash", hash, "inForce", r.inForce)
}

// oneLine joins a multi-line refusal (config.Error lists one problem a
// line) into one line.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}

// contentHash is the short hash of the file's content: the first 12 hex
// digits of its SHA-256 (of no content when path is empty).
func contentHash(path string) (string, error) {
	var b []byte
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer func() { _ = f.Close() }()
		if b, err = io.ReadAll(io.LimitReader(f, config.MaxFileSize+1)); err != nil {
			return "", err
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12], nil
}

// restartNeeded refuses a change to what Run wired at start: the leader
// election (its Lease, timings, and whether it runs at all) and the
// listen addresses of the endpoints. The controller refuses, on its own,
// what it built at start (Controller.LiveCheck).
func restartNeeded(cur, next *config.Config) error {
	for _, c := range diff(cur, next) {
		if strings.HasPrefix(c.path, "leaderElection.") || c.path == "metricsAddr" || c.path == "healthAddr" {
			return &controller.RestartError{Field: c.path, From: c.from, To: c.to}
		}
	}
	return nil
}

// change is one field that differs between two configurations.
type change struct {
	path, from, to string
	// secret is set for the fence classes, whose values (options, BMC
	// addresses) are not logged.
	secret bool
}

// changes names the fields that differ, for the log: "path: from -> to",
// or the path alone under fencing.
func changes(cur, next *config.Config) []string {
	var out []string
	for _, c := range diff(cur, next) {
		if c.secret {
			out = append(out, c.path)
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s -> %s", c.path, c.from, c.to))
	}
	return out
}

// diff lists the fields of two configurations that differ, by their
// paths in the file (fence classes by name).
func diff(cur, next *config.Config) []change {
	var out []change
	walk(reflect.ValueOf(*cur), reflect.ValueOf(*next), "", &out)
	return out
}

var leafTypes = []reflect.Type{reflect.TypeFor[config.Duration](), reflect.TypeFor[config.Fencing]()}

func walk(a, b reflect.Value, prefix string, out *[]change) {
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		av, bv := a.Field(i), b.Field(i)
		switch {
		case f.Type == reflect.TypeFor[config.Fencing]():
			*out = append(*out, classChanges(av.Interface().(config.Fencing), bv.Interface().(config.Fencing))...)
		case f.Type.Kind() == reflect.Struct && !slices.Contains(leafTypes, f.Type) && f.Type.PkgPath() == reflect.TypeFor[config.Config]().PkgPath():
			walk(av, bv, path+".", out)
		case !reflect.DeepEqual(av.Interface(), bv.Interface()):
			*out = append(*out, change{path: path, from: show(av), to: show(bv)})
		}
	}
}

// classChanges names the fence classes added, removed or changed.
func classChanges(a, b config.Fencing) []change {
	byName := func(f config.Fencing) map[string]config.FenceClass {
		m := map[string]config.FenceClass{}
		for _, c := range f.Classes {
			m[c.Name] = c
		}
		return m
	}
	am, bm := byName(a), byName(b)
	var out []change
	for _, c := range a.Classes {
		if n, ok := bm[c.Name]; !ok {
			out = append(out, change{path: fmt.Sprintf("fencing.classes[%s] removed", c.Name), secret: true})
		} else if !reflect.DeepEqual(c, n) {
			out = append(out, change{path: fmt.Sprintf("fencing.classes[%s] changed", c.Name), secret: true})
		}
	}
	for _, c := range b.Classes {
		if _, ok := am[c.Name]; !ok {
			out = append(out, change{path: fmt.Sprintf("fencing.classes[%s] added", c.Name), secret: true})
		}
	}
	if len(out) == 0 && !reflect.DeepEqual(a, b) {
		out = append(out, change{path: "fencing.classes (order)", secret: true})
	}
	return out
}

// show prints a field's value as the file would hold it.
func show(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	if s, ok := p.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}

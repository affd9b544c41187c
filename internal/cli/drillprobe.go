package cli

import (
	"context"
	"net"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// probeConfig is the TCP endpoint a drill probes.
type probeConfig struct {
	address  string
	interval time.Duration
}

// probeSample is one connection attempt.
type probeSample struct {
	at time.Time
	ok bool
}

// prober connects to a TCP address at a fixed interval and records the
// outcomes.
type prober struct {
	cfg     probeConfig
	clock   clock.WithTicker
	mu      sync.Mutex
	samples []probeSample
}

func (p *prober) run(ctx context.Context) {
	t := p.clock.NewTicker(p.cfg.interval)
	defer t.Stop()
	d := net.Dialer{Timeout: p.cfg.interval}
	for {
		at := p.clock.Now()
		conn, err := d.DialContext(ctx, "tcp", p.cfg.address)
		if err == nil {
			conn.Close()
		}
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.samples = append(p.samples, probeSample{at: at, ok: err == nil})
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (p *prober) snapshot() []probeSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]probeSample(nil), p.samples...)
}

// restored reports whether the probe failed after since and answers again
// now; failedSince reports whether it failed after since at all.
func probeState(samples []probeSample, since time.Time) (failed, answering bool) {
	for _, s := range samples {
		if !s.at.Before(since) && !s.ok {
			failed = true
		}
	}
	return failed, len(samples) > 0 && samples[len(samples)-1].ok
}

// summarizeProbe computes the client-visible downtime from the samples,
// counting from since (the start of the trigger). It is pure.
func summarizeProbe(address string, interval time.Duration, samples []probeSample, since time.Time) ProbeReport {
	r := ProbeReport{Address: address, IntervalMillis: interval.Milliseconds()}
	var first, lastFail *probeSample
	for i := range samples {
		s := &samples[i]
		if s.at.Before(since) {
			r.DownBeforeTrigger = !s.ok
			continue
		}
		r.Attempts++
		if s.ok {
			continue
		}
		r.Failures++
		if first == nil {
			first = s
		}
		lastFail = s
	}
	if first == nil {
		return r
	}
	ff := first.at.UTC()
	r.FirstFailure = &ff
	for i := range samples {
		s := &samples[i]
		if s.ok && s.at.After(lastFail.at) {
			rt := s.at.UTC()
			r.Restored = &rt
			d := rt.Sub(ff).Seconds()
			r.DowntimeSeconds = &d
			break
		}
	}
	return r
}

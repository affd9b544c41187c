// Package logging builds the logger of the controller and the agent from
// their --log-format and -v flags: klog's text format (the default) or one
// JSON object per line (log/slog's JSON handler), for log pipelines that
// parse fields instead of text.
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2/textlogger"
)

// The log formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// AddFlag declares --log-format on fs, bound to format.
func AddFlag(fs *pflag.FlagSet, format *string) {
	fs.StringVar(format, "log-format", FormatText, `log format: "text" (klog's) or "json" (one JSON object per line with "time", "level", "msg" and the key/values)`)
}

// Validate returns a one-line error for a format that is not text or json.
func Validate(format string) error {
	switch format {
	case FormatText, FormatJSON:
		return nil
	}
	return fmt.Errorf("--log-format %q: want %q or %q", format, FormatText, FormatJSON)
}

// New returns a logger writing to out in format, with the messages of
// verbosity up to v (logr's V levels). The commands make it klog's logger
// too, so that client-go's lines come out the same way.
func New(format string, v int, out io.Writer) (logr.Logger, error) {
	if err := Validate(format); err != nil {
		return logr.Discard(), err
	}
	var log logr.Logger
	if format == FormatJSON {
		// logr's V(n) is slog's level -n.
		log = logr.FromSlogHandler(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.Level(-v)}))
	} else {
		log = textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(v), textlogger.Output(out)))
	}
	return log, nil
}

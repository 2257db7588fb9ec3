package main

import (
	"io"
	"log/slog"
	"strings"

	"github.com/batonhq/baton/telemetry"
)

// The environment variables that set the log's level and format when the
// flags do not.
const (
	envLogLevel  = "BATON_LOG_LEVEL"
	envLogFormat = "BATON_LOG_FORMAT"
)

// logLevels are the values of --log-level.
var logLevels = []struct {
	name  string
	level slog.Level
}{
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warn", slog.LevelWarn},
	{"error", slog.LevelError},
}

// logConfig is how a command logs; the zero value logs text at info.
type logConfig struct {
	level slog.Level
	json  bool
}

// setLog sets e's log from --log-level and --log-format, else from the
// environment, and e.log to a logger writing to stderr.
func (f *flags) setLog(e *env) error {
	var c logConfig
	level, levelFrom := f.logLevel, "--log-level"
	if level == "" {
		level, levelFrom = e.env(envLogLevel), envLogLevel
	}
	if level != "" {
		found := false
		for _, l := range logLevels {
			if strings.EqualFold(level, l.name) {
				c.level, found = l.level, true
			}
		}
		if !found {
			return usagef("%s: %s %q: give debug, info, warn or error", f.path, levelFrom, level)
		}
	}
	format, formatFrom := f.logFormat, "--log-format"
	if format == "" {
		format, formatFrom = e.env(envLogFormat), envLogFormat
	}
	switch strings.ToLower(format) {
	case "", "text":
	case "json":
		c.json = true
	default:
		return usagef("%s: %s %q: give text or json", f.path, formatFrom, format)
	}
	e.logs = c
	e.log = e.useLog(e.stderr)
	return nil
}

// useLog returns a logger writing to w as e.logs says, which adds the trace
// and span ids of a ctx carrying a span. In the binary it becomes slog's
// default too, so that what libraries and handlers log there goes through
// it.
func (e *env) useLog(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: e.logs.level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if e.logs.json {
		h = slog.NewJSONHandler(w, opts)
	}
	log := slog.New(telemetry.NewLogHandler(h))
	if e.defaultLog {
		slog.SetDefault(log)
	}
	return log
}

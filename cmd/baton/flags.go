package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flags is a command's flag set and its help text.
type flags struct {
	*flag.FlagSet
	path     string // "dlq replay"
	synopsis string // one line: what it does
	usage    string // "[flags] ID"
	details  string // paragraphs after the synopsis
	examples []string
	// logLevel and logFormat are --log-level and --log-format, which every
	// command has.
	logLevel, logFormat string
}

func newFlags(path, synopsis, usage, details string, examples ...string) *flags {
	fs := flag.NewFlagSet("baton "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &flags{FlagSet: fs, path: path, synopsis: synopsis, usage: usage, details: details, examples: examples}
	fs.StringVar(&f.logLevel, "log-level", "", "log at `LEVEL` and above, to stderr: debug, info, warn or error (default: "+envLogLevel+", else info)")
	fs.StringVar(&f.logFormat, "log-format", "", "write log lines as `FORMAT` text or json (default: "+envLogFormat+", else text)")
	return f
}

// parse parses args, flags and positional arguments in any order ("--" ends
// the flags), and sets e's logger as --log-level and --log-format say. On
// --help it prints the help to e.stdout and returns errHelp.
func (f *flags) parse(e *env, args []string) ([]string, error) {
	pos, err := f.parseFlags(e.stdout, args)
	if err != nil {
		return nil, err
	}
	if err := f.setLog(e); err != nil {
		return nil, err
	}
	return pos, nil
}

// parseFlags is parse but for the logger: it returns the positional
// arguments, and prints the help to w on --help.
func (f *flags) parseFlags(w io.Writer, args []string) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.help(w)
			return nil, errHelp
		}
		if err != nil {
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown flag " + asTyped(args, name)
			}
			return nil, usagef("%s: %s; see baton %s --help", f.path, msg, f.path)
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// asTyped returns the flag -name as the user typed it: -name or --name.
func asTyped(args []string, name string) string {
	bare := strings.TrimLeft(name, "-")
	for _, a := range args {
		flagPart, _, _ := strings.Cut(a, "=")
		if strings.HasPrefix(flagPart, "-") && strings.TrimLeft(flagPart, "-") == bare {
			return flagPart
		}
	}
	return name
}

// parseArgs is parse for a command that takes min to max positional
// arguments; what names the missing ones.
func (f *flags) parseArgs(e *env, args []string, min, max int, what string) ([]string, error) {
	args, err := f.parse(e, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(args) < min:
		return nil, usagef("%s: missing %s; see baton %s --help", f.path, what, f.path)
	case len(args) > max:
		return nil, usagef("%s: unexpected argument %q; see baton %s --help", f.path, args[max], f.path)
	}
	return args, nil
}

func (f *flags) help(w io.Writer) {
	fmt.Fprintf(w, "baton %s: %s\n\nUsage:\n  baton %s %s\n", f.path, f.synopsis, f.path, f.usage)
	if f.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(f.details))
	}
	var lines [][2]string
	width := 0
	f.VisitAll(func(fl *flag.Flag) {
		arg, usage := flag.UnquoteUsage(fl)
		left := "--" + fl.Name
		if arg != "" {
			left += " " + arg
		}
		if !strings.Contains(usage, "(default") {
			def := fl.DefValue
			if def == "" {
				def = `""`
			}
			usage += " (default " + def + ")"
		}
		lines = append(lines, [2]string{left, usage})
		width = max(width, len(left))
	})
	if len(lines) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		for _, l := range lines {
			fmt.Fprintf(w, "  %-*s  %s\n", width, l[0], l[1])
		}
		fmt.Fprint(w, "  --help", strings.Repeat(" ", max(0, width-6)), "  show this help\n")
	}
	if len(f.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, ex := range f.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// dataFlag adds --data to a command that inspects a data directory.
func (f *flags) dataFlag() *string {
	return f.String("data", "baton-data", "the data `DIR` of a demo run (held by a running baton demo or idle)")
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// leafCommands lists every command that parses flags, as typed: "demo",
// "dlq list", ...
func leafCommands() []string {
	subs := map[string][]subcommand{"dlq": dlqCommands, "run": runCommands, "schedule": scheduleCommands, "namespace": namespaceCommands}
	var paths []string
	for _, c := range commands {
		s, ok := subs[c.name]
		if !ok {
			paths = append(paths, c.name)
			continue
		}
		for _, sc := range s {
			paths = append(paths, c.name+" "+sc.name)
		}
	}
	return paths
}

// Every command has --log-level and --log-format, says so in its help,
// and refuses a bad value, from a flag or from the environment, naming it
// and the choices.
func TestLogFlagsOnEveryCommand(t *testing.T) {
	t.Parallel()
	helpLines := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  --log-level LEVEL +.*debug, info, warn or error \(default: BATON_LOG_LEVEL, else info\)$`),
		regexp.MustCompile(`(?m)^  --log-format FORMAT +.*text or json \(default: BATON_LOG_FORMAT, else text\)$`),
	}
	for _, path := range leafCommands() {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			cmd := strings.Fields(path)
			help := mustRun(t, append(cmd, "--help")...)
			for _, re := range helpLines {
				if !re.MatchString(help) {
					t.Errorf("baton %s --help has no line matching %s:\n%s", path, re, help)
				}
			}
			for _, tc := range []struct {
				args []string
				vars map[string]string
				want string
			}{
				{[]string{"--log-level", "loud"}, nil, `--log-level "loud": give debug, info, warn or error`},
				{[]string{"--log-format=xml"}, nil, `--log-format "xml": give text or json`},
				{nil, map[string]string{envLogLevel: "verbose"}, `BATON_LOG_LEVEL "verbose": give debug, info, warn or error`},
				{nil, map[string]string{envLogFormat: "logfmt"}, `BATON_LOG_FORMAT "logfmt": give text or json`},
			} {
				r := batonEnv(t, tc.vars, append(cmd, tc.args...)...)
				if r.code != exitUsage || !strings.Contains(r.stderr, "baton "+path+": "+tc.want) {
					t.Errorf("baton %s %v with %v: exit %d, stderr %q; want 2 and %q", path, tc.args, tc.vars, r.code, r.stderr, tc.want)
				}
			}
		})
	}
	// The flags win over the environment, which is then not read.
	r := batonEnv(t, map[string]string{envLogLevel: "loud", envLogFormat: "xml"}, "version", "--log-level", "WARN", "--log-format", "json")
	if r.code != exitOK {
		t.Errorf("version with good flags and a bad environment: exit %d, stderr %q", r.code, r.stderr)
	}
}

// The logger a command's flags set writes the format asked, at the level
// asked and above.
func TestLogFormatAndLevel(t *testing.T) {
	t.Parallel()
	all := []string{"DEBUG", "INFO", "WARN", "ERROR"}
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		json bool
		want []string
	}{
		{"defaults", nil, nil, false, all[1:]},
		{"json debug", []string{"--log-level", "debug", "--log-format", "json"}, nil, true, all},
		{"upper case", []string{"--log-level=WARN", "--log-format=JSON"}, nil, true, all[2:]},
		{"environment", nil, map[string]string{envLogLevel: "error", envLogFormat: "json"}, true, all[3:]},
		{"flags win", []string{"--log-level", "debug", "--log-format", "text"}, map[string]string{envLogLevel: "error", envLogFormat: "json"}, false, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var errOut syncBuffer
			e := &env{stdout: io.Discard, stderr: &errOut, getenv: func(k string) string { return tc.vars[k] }}
			if _, err := newFlags("test", "", "", "").parse(e, tc.args); err != nil {
				t.Fatal(err)
			}
			e.log.Debug("one", "n", 1)
			e.log.Info("two", "n", 2)
			e.log.Warn("three", "n", 3)
			e.log.Error("four", "n", 4)
			var got []string
			textLevel := regexp.MustCompile(`^time=\S+ level=(\w+) msg=\w+ n=\d\n$`)
			for l := range strings.Lines(errOut.String()) {
				if tc.json {
					var rec struct{ Level, Msg string }
					if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg == "" {
						t.Fatalf("not a JSON record: %q (%v)", l, err)
					}
					got = append(got, rec.Level)
					continue
				}
				m := textLevel.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("not a text record: %q", l)
				}
				got = append(got, m[1])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("levels written %v, want %v:\n%s", got, tc.want, errOut.String())
			}
		})
	}
}

// screen returns the lines a terminal shows after out: \r goes back to the
// start of the line, ESC[K erases to its end, \n starts a new line.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[K"):
			cur = cur[:col]
			i += 3
		case out[i] == '\r':
			col = 0
			i++
		case out[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
			i++
		default:
			r, n := utf8.DecodeRuneInString(out[i:])
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			i += n
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// Log lines written while the progress line is redrawn in place each come
// out whole, on a line of their own, and the progress line stays below
// them.
func TestLogLinesKeepTheProgressLineWhole(t *testing.T) {
	t.Parallel()
	var b strings.Builder // written only by the console, under its lock
	con := &console{w: &b}
	e := &env{stdout: io.Discard, stderr: &b, tty: true}
	if _, err := newFlags("test", "", "", "").parse(e, []string{"--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	log := e.useLog(con)
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			con.draw(fmt.Sprintf("placed %d · completed %d", i, i/2))
		}
	})
	wg.Go(func() {
		for i := range n {
			log.Warn("dead-lettered", "group", "payment", "n", i)
		}
	})
	wg.Wait()
	con.draw("placed 200 · completed 200")
	con.endLine()

	lines := screen(b.String())
	if len(lines) != n+1 || lines[n] != "placed 200 · completed 200" {
		t.Fatalf("the screen shows %d lines, want %d log lines and the last progress line under them:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	seen := map[int]bool{}
	for _, l := range lines[:n] {
		var rec struct {
			Msg string
			N   int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg != "dead-lettered" {
			t.Fatalf("a broken log line: %q (%v)", l, err)
		}
		seen[rec.N] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct log lines, want %d", len(seen), n)
	}
}

var progressLine = regexp.MustCompile(`^placed \d+ · paid \d+ · reserved \d+ · notified \d+ · completed \d+ · cancelled \d+ · dead \d+ · \d+ orders/s$`)

// On a terminal, the demo's own log lines (the runtime's warnings of dead
// letters here) do not break its progress line.
func TestDemoLogsKeepItsProgressLineWhole(t *testing.T) {
	t.Parallel()
	var out, errOut syncBuffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, tty: true},
		[]string{"demo", "--orders", "60", "--fail-rate", "1", "--log-format", "json"})
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	dead := 0
	lines := screen(errOut.String())
	for i, l := range lines {
		var rec struct{ Level, Msg string }
		switch {
		case progressLine.MatchString(l):
			if i != len(lines)-1 {
				t.Errorf("a progress line left above the last line: %q", l)
			}
		case json.Unmarshal([]byte(l), &rec) == nil && rec.Msg != "":
			if rec.Msg == "dead-lettered" && rec.Level == "WARN" {
				dead++
			}
		default:
			t.Errorf("a broken line on the screen: %q", l)
		}
	}
	if dead == 0 {
		t.Errorf("no warning of a dead letter on the screen:\n%s", strings.Join(lines, "\n"))
	}
}

// baton server writes JSON logs with --log-format json, an access line per
// API request among them.
func TestServerLogsJSON(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut},
			[]string{"server", "--demo", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--log-format", "json"})
	}()
	waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
	url := listeningLine.FindStringSubmatch(errOut.String())[1]
	resp, err := http.Get(url + "/v1/flows?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the access log line", func() bool { return strings.Contains(errOut.String(), `"path":"/v1/flows"`) }, done, &errOut)
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("server: exit %d\n%s", code, errOut.String())
	}
	access := 0
	for l := range strings.Lines(errOut.String()) {
		if !strings.HasPrefix(l, "{") {
			continue // the server's own banner
		}
		var rec struct {
			Level, Msg, Method, Path string
			Status                   int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not JSON: %q (%v)", l, err)
			continue
		}
		if rec.Msg == "api: request" && rec.Path == "/v1/flows" {
			access++
			if rec.Level != "INFO" || rec.Method != "GET" || rec.Status != http.StatusOK {
				t.Errorf("access line %s: want INFO, GET, 200", l)
			}
		}
	}
	if access != 1 {
		t.Errorf("%d access lines for GET /v1/flows, want 1:\n%s", access, errOut.String())
	}
}

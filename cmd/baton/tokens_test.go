package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	cliReadToken  = "cli-read-token-0123456789"
	cliAdminToken = "cli-admin-token-0123456789"
)

// baton server takes scoped tokens from --tokens-file or BATON_TOKENS; the
// commands pass theirs with --token or BATON_TOKEN, and a read token is
// refused what needs admin, saying so.
func TestServerScopedTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	text := "# who may do what\nread:" + cliReadToken + "\nadmin:" + cliAdminToken + "  # the operators\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, how := range map[string]struct {
		args []string
		vars map[string]string
	}{
		"file":        {args: []string{"--tokens-file", file}},
		"environment": {vars: map[string]string{"BATON_TOKENS": "read:" + cliReadToken + ",admin:" + cliAdminToken}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "data")
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var out, errOut syncBuffer
			done := make(chan int, 1)
			go func() {
				args := append([]string{"server", "--demo", "--data", data, "--addr", "127.0.0.1:0"}, how.args...)
				done <- run(ctx, &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return how.vars[k] }}, args)
			}()
			waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
			url := listeningLine.FindStringSubmatch(errOut.String())[1]
			if !strings.Contains(errOut.String(), "2 token(s) required") {
				t.Errorf("banner:\n%s", errOut.String())
			}
			mustRun(t, "run", "list", "--server", url, "--token", cliReadToken)
			r := batonEnv(t, map[string]string{"BATON_SERVER": url, "BATON_TOKEN": cliReadToken}, "dlq", "drop", "no-such-letter")
			if r.code == 0 || !strings.Contains(r.stderr, "needs a token with the admin scope") {
				t.Errorf("dlq drop with a read token: exit %d, stderr %q", r.code, r.stderr)
			}
			r = batonEnv(t, map[string]string{"BATON_SERVER": url, "BATON_TOKEN": cliAdminToken}, "dlq", "drop", "no-such-letter")
			if r.code == 0 || strings.Contains(r.stderr, "scope") {
				t.Errorf("dlq drop of an unknown letter with an admin token: exit %d, stderr %q (want not found)", r.code, r.stderr)
			}
			stop()
			if code := <-done; code != 0 {
				t.Errorf("server exit %d\n%s", code, errOut.String())
			}
		})
	}
}

func TestServerRefusesBadTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("read:"+cliReadToken+"\nsuper:"+cliAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"--token", "short"}, nil, "a token of 5 bytes is too short: give at least 16"},
		{[]string{"--tokens-file", bad}, nil, `line 2: scope "super" is none of read, write, admin`},
		{[]string{"--tokens-file", filepath.Join(dir, "missing")}, nil, "--tokens-file"},
		{nil, map[string]string{"BATON_TOKENS": cliReadToken}, "BATON_TOKENS: tokens: line 1: an entry without a scope"},
	} {
		var out, errOut syncBuffer
		args := append([]string{"server", "--demo", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0"}, tc.args...)
		code := run(context.Background(), &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return tc.vars[k] }}, args)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 and %q", tc.args, tc.vars, code, errOut.String(), tc.want)
		}
		if strings.Contains(errOut.String(), cliAdminToken) || (tc.vars != nil && strings.Contains(errOut.String(), cliReadToken)) {
			t.Errorf("%v: the error shows a token: %q", tc.args, errOut.String())
		}
	}
}

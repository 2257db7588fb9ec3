// Package docs holds the user documentation; its tests run the commands of
// the guides so that they cannot rot.
package docs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"go/format"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// block is a fenced block of a guide: its language and the words after it
// ("go file=shipping.go", "sh service").
type block struct {
	lang, tag, text string
}

var fence = regexp.MustCompile("(?ms)^```(\\w+) ([^\\n]*)\\n(.*?)^```")

func blocks(t *testing.T, path string) []block {
	t.Helper()
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	for _, m := range fence.FindAllStringSubmatch(string(md), -1) {
		out = append(out, block{lang: m[1], tag: m[2], text: m[3]})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no tagged blocks", path)
	}
	return out
}

func tagged(bs []block, lang, tag string) []block {
	var out []block
	for _, b := range bs {
		if b.lang == lang && (b.tag == tag || strings.HasPrefix(b.tag, tag)) {
			out = append(out, b)
		}
	}
	return out
}

const guideModule = "example.com/shipping"

// The guide's code is examples/shipping's, but for the module path.
func TestFirstServiceGuideMatchesExample(t *testing.T) {
	t.Parallel()
	files := tagged(blocks(t, "first-service.md"), "go", "file=")
	if len(files) != 3 {
		t.Fatalf("%d go files in the guide, want 3", len(files))
	}
	for _, f := range files {
		name := strings.TrimPrefix(f.tag, "file=")
		if formatted, err := format.Source([]byte(f.text)); err != nil || !bytes.Equal(formatted, []byte(f.text)) {
			t.Errorf("%s in the guide is not gofmt'ed (%v)", name, err)
		}
		guide, err := format.Source([]byte(strings.ReplaceAll(f.text, `"`+guideModule+`"`, `"github.com/batonhq/baton/examples/shipping"`)))
		if err != nil {
			t.Fatalf("%s in the guide: %v", name, err)
		}
		repo, err := os.ReadFile(filepath.Join("..", "examples", "shipping", name))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := format.Source(repo); !bytes.Equal(guide, want) {
			t.Errorf("%s in the guide differs from examples/shipping/%s", name, name)
		}
	}
}

// The guide, run as a new user would in a folder outside the repository,
// on each backend: a module of its own builds the service and the flow
// with the public API, the service handles an event published to it, and
// the flow completes one order and fails the one without an address.
//
// Two commands are replaced: `go install .../cmd/baton@latest` by a build
// of this checkout's baton, and `go get github.com/batonhq/baton@latest` by
// a replace directive pointing at this checkout (the module is not
// published where this test runs).
func TestFirstServiceGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a module of its own; skipped with -short")
	}
	bs := blocks(t, "first-service.md")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "GOFLAGS=-mod=mod",
		"BATON_BUS=", "BATON_STORE=", "BATON_NAMESPACE=", "BATON_DATA=", "BATON_SERVER=", "BATON_TOKEN=")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "baton"), "./cmd/baton")
	build.Dir, build.Env = repo, env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build baton: %v\n%s", err, out)
	}

	setup := tagged(bs, "sh", "setup")
	if len(setup) != 3 {
		t.Fatalf("%d setup blocks, want 3 (install, module, build)", len(setup))
	}
	if !strings.Contains(setup[0].text, "go install github.com/batonhq/baton/cmd/baton@latest") {
		t.Fatalf("the first setup block does not install baton:\n%s", setup[0].text)
	}
	module := strings.ReplaceAll(setup[1].text, "go get github.com/batonhq/baton@latest",
		"go mod edit -require=github.com/batonhq/baton@v0.0.0 -replace=github.com/batonhq/baton="+repo)
	shell(t, tmp, env, module)
	dir := filepath.Join(tmp, "shipping")
	for _, f := range tagged(bs, "go", "file=") {
		path := filepath.Join(dir, strings.TrimPrefix(f.tag, "file="))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shell(t, dir, env, setup[2].text)

	run := tagged(bs, "sh", "service")[0].text + tagged(bs, "sh", "flow")[0].text
	for _, b := range []struct{ name, env string }{
		{"embedded", ""},
		{"RabbitMQ+PostgreSQL", tagged(bs, "sh", "env-rabbitmq")[0].text},
		{"NATS+Redis", tagged(bs, "sh", "env-nats")[0].text},
	} {
		t.Run(b.name, func(t *testing.T) {
			script := b.env
			if b.env != "" {
				ns := "bt" + strings.ToLower(rand.Text()[:12])
				script += "export BATON_NAMESPACE=" + ns + "\n"
				cleanNamespace(t, dir, env, b.env, ns)
			}
			out := shell(t, dir, env, script+run)
			for _, want := range []string{
				`"correlationid":"o-1","status":"accepted"`, // the event, published
				"shipment.requested.v1",                     // in the timeline of o-1
				`"published":`,                              // the stats
				"completed",                                 // o-2's run
				"o-3 failed, as it should",
				"no address to ship to", // the dead letter of o-3
			} {
				if !strings.Contains(out, want) {
					t.Errorf("the guide's commands did not print %q:\n%s", want, out)
				}
			}
		})
	}
}

// shell runs script with bash in dir, stopping at the first command that
// fails, and ends the processes it left in the background.
func shell(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"+script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	return string(out)
}

// cleanNamespace deletes the namespace with baton namespace delete, as the
// guide says, when the test ends; it skips the test when the backends the
// env block exports are not reachable.
func cleanNamespace(t *testing.T, dir string, env []string, envBlock, ns string) {
	t.Helper()
	for _, line := range strings.Split(envBlock, "\n") {
		if _, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			need(t, strings.Trim(v, "'"))
		}
	}
	t.Cleanup(func() {
		out := shell(t, dir, env, envBlock+"baton namespace delete "+ns+" --yes\n")
		t.Logf("cleanup: %s", out)
	})
}

// need fails the test in CI and skips it elsewhere when nothing listens at
// rawURL's host.
func need(t *testing.T, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("URL %q: %v", rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable: %v (DEVELOPERS.md says how to start it)", u.Host, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

package expect_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/expect"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	want := []expect.Expectation{{Name: "inventory-answers", After: []string{"payment.processed.v1"},
		Want: []string{"inventory.reserved.v1", "inventory.failed.v1"}, Within: 30 * time.Second}}
	for _, tc := range []struct{ name, doc string }{
		{"one in YAML", `
name: inventory-answers
after: payment.processed.v1
want: [inventory.reserved.v1, inventory.failed.v1]
within: 30s
`},
		{"a list in YAML", `
- name: inventory-answers
  after: [payment.processed.v1]
  want:
    - inventory.reserved.v1
    - inventory.failed.v1
  within: 30s
`},
		{"an object with a list", `
expectations:
  - {name: inventory-answers, after: payment.processed.v1, want: [inventory.reserved.v1, inventory.failed.v1], within: 30s}
`},
		{"JSON", `{"name": "inventory-answers", "after": "payment.processed.v1",
	"want": ["inventory.reserved.v1", "inventory.failed.v1"], "within": "30s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expect.Load([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v; want %+v", got, want)
			}
		})
	}
}

// Each bad document is refused as Invalid with an error that names the
// expectation and the field at fault.
func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	const ok = "name: a\nafter: x.done.v1\nwant: y.done.v1\nwithin: 1s\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "the document is empty"},
		{"not YAML", "name: [a", "not valid YAML or JSON"},
		{"a scalar", "42", "want an expectation, a list of them"},
		{"an empty list", "[]", "holds no expectations"},
		{"not an object", "- 42", "expectation 1: want an object"},
		{"unknown field", ok + "whithin: 2s\n", `expectation 1 (a): json: unknown field "whithin"`},
		{"no name", "after: x.done.v1\nwant: y.done.v1\nwithin: 1s\n", "name: give the expectation a name"},
		{"bad name", "name: a b\nafter: x.done.v1\nwant: y.done.v1\nwithin: 1s\n", `expectation a b: name "a b": want letters`},
		{"no after", "name: a\nwant: y.done.v1\nwithin: 1s\n", "expectation 1 (a): after: missing"},
		{"after not a type", "name: a\nafter: done\nwant: y.done.v1\nwithin: 1s\n", "expectation a: after: "},
		{"after a number", "name: a\nafter: 3\nwant: y.done.v1\nwithin: 1s\n", "expectation 1 (a): after: want an event type or a list"},
		{"no want", "name: a\nafter: x.done.v1\nwithin: 1s\n", "expectation 1 (a): want: missing"},
		{"want empty", "name: a\nafter: x.done.v1\nwant: []\nwithin: 1s\n", "expectation a: want: give at least one event type"},
		{"want twice", "name: a\nafter: x.done.v1\nwant: [y.done.v1, y.done.v1]\nwithin: 1s\n", "expectation a: want: y.done.v1 is given twice"},
		{"awaits itself", "name: a\nafter: x.done.v1\nwant: x.done.v1\nwithin: 1s\n", "x.done.v1 is in both after and want"},
		{"no within", "name: a\nafter: x.done.v1\nwant: y.done.v1\n", "expectation 1 (a): within: missing"},
		{"within without unit", "name: a\nafter: x.done.v1\nwant: y.done.v1\nwithin: 30\n", `expectation 1 (a): within 30: write a duration with its unit`},
		{"within not a duration", "name: a\nafter: x.done.v1\nwant: y.done.v1\nwithin: soon\n", `expectation 1 (a): within "soon": want a duration`},
		{"within negative", "name: a\nafter: x.done.v1\nwant: y.done.v1\nwithin: -1s\n", "expectation a: within -1s: give a positive duration"},
		{"same name twice", "[" + `{"name": "a", "after": "x.done.v1", "want": "y.done.v1", "within": "1s"},` +
			`{"name": "a", "after": "x.done.v1", "want": "z.done.v1", "within": "1s"}]`, "expectation 2 (a): the name is already that of expectation 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := expect.Load([]byte(tc.doc))
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || baton.ErrorCode(err) != baton.Invalid {
				t.Errorf("error %q (code %s); want Invalid, containing %q", err, baton.ErrorCode(err), tc.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "expect.yaml")
	if err := os.WriteFile(path, []byte("name: a\nafter: x.done.v1\nwant: y.done.v1\nwithin: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := expect.LoadFile(path)
	if err != nil || len(got) != 1 || got[0].Within != 2*time.Second {
		t.Errorf("LoadFile = %+v, %v; want expectation a within 2s", got, err)
	}
	_, err = expect.LoadFile(filepath.Join(dir, "missing.yaml"))
	if baton.ErrorCode(err) != baton.NotFound || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v (code %s); want NotFound naming it", err, baton.ErrorCode(err))
	}
	if err := os.WriteFile(path, []byte("name: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = expect.LoadFile(path); !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "after: missing") {
		t.Errorf("a bad file: %v; want an error naming the file and the field", err)
	}
}

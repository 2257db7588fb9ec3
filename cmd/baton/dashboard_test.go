package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// envScreenshots, set to 1, makes TestDashboardInBrowser write its
// screenshots of the embedded run into docs/dashboard/, which
// docs/dashboard.md shows; otherwise they go to a temporary directory, so
// that a test run leaves the tree as it was.
const envScreenshots = "BATON_DASHBOARD_SCREENSHOTS"

// chromium returns the path of Debian's headless-capable chromium: CI
// installs it (.ci/run); elsewhere the test skips without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium to drive: apt-get install -y chromium (.ci/run does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// dashServer runs baton server with args until the test ends or stop is
// called, and returns its URL.
func dashServer(t *testing.T, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut}, append([]string{"server", "--demo", "--addr", "127.0.0.1:0"}, args...))
	}()
	waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
	url = listeningLine.FindStringSubmatch(errOut.String())[1]
	if !strings.Contains(errOut.String(), "dashboard: "+url+"/") {
		t.Errorf("the server does not print the dashboard's URL:\n%s", errOut.String())
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server ended with %d:\n%s", code, errOut.String())
		}
	}
	t.Cleanup(stop)
	return url, stop
}

// The dashboard in a real browser, against a server that ran the demo in
// both styles with faults: choreographed orders (some dead-lettered) and
// orchestrated ones (declined, out of stock and refunded, flaky), on the
// embedded backend and on RabbitMQ with PostgreSQL. Each page shows what
// the API says, a search finds order o-000056, a bulk replay empties the
// dead letters, a schedule pauses, the live tail follows and pauses.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	cases := []struct {
		name  string
		need  func(t *testing.T)
		args  func(ns string) []string
		clean func(t *testing.T, ns string)
		shots bool
	}{
		{"embedded", func(*testing.T) {}, func(string) []string { return nil }, func(*testing.T, string) {}, true},
		{brokerPairs[0].name, brokerPairs[0].need, brokerPairs[0].args, brokerPairs[0].clean, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.need(t)
			ns := testNamespace()
			c.clean(t, ns)
			backends := c.args(ns)
			dir := t.TempDir()
			shots := t.TempDir()
			if c.shots && os.Getenv(envScreenshots) == "1" {
				shots = filepath.Join("..", "..", "docs", "dashboard")
			}
			browse(t, browser, dir, backends, shots)
		})
	}
}

func browse(t *testing.T, browser, dir string, backends []string, shots string) {
	const n, rate = 60, 0.3
	_, deadIDs := expect(n, rate)
	if len(deadIDs) == 0 {
		t.Fatalf("no order of %d is dead-lettered at rate %v", n, rate)
	}
	// Choreography, with faults.
	mustRun(t, append([]string{"demo", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", dir}, backends...)...)

	// Orchestration, with the same faults but a gateway that is down (a
	// dead letter of a step is not replayed once its run has ended).
	faults := orders.Faults{Rate: rate}
	var orchestrated []string
	kinds := map[orders.Fault]string{}
	for i := 200; len(kinds) < 4; i++ {
		id := orders.NewOrder(i).OrderID
		k := faults.For(id)
		if k == orders.GatewayDown {
			continue
		}
		if _, ok := kinds[k]; !ok || len(orchestrated) < 8 {
			kinds[k] = id
			orchestrated = append(orchestrated, id)
		}
	}
	url, stop := dashServer(t, append([]string{"--data", dir, "--fail-rate", fmt.Sprint(rate)}, backends...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := client.New(url, nil)
	start := func(id string) store.Run {
		t.Helper()
		var num int
		fmt.Sscanf(id, "o-%d", &num)
		r, _, err := c.StartRun(ctx, flow.StartRequest{Flow: "order", Key: id, Input: json.RawMessage(orderInput(num))})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return r
	}
	ended := func(r store.Run) store.Run {
		t.Helper()
		for {
			got, err := c.Run(ctx, r.ID)
			if err != nil {
				t.Fatalf("run %s: %v", r.ID, err)
			}
			if got.Status.Terminal() {
				return got
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var runs []store.Run
	for _, id := range orchestrated {
		runs = append(runs, start(id))
	}
	for i := range runs {
		runs[i] = ended(runs[i])
	}
	stop()

	// The same data, served without faults: replayed dead letters are
	// handled.
	url, _ = dashServer(t, append([]string{"--data", dir}, backends...)...)
	c = client.New(url, nil)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first action starts the browser, which lives as long as the
	// context it is given.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	b := &tab{t: t, ctx: bctx, shots: shots}

	// Overview: the dead letters now, and the runs by status.
	dead, err := c.ListDead(ctx, "", 1000)
	if err != nil || len(dead) != len(deadIDs) {
		t.Fatalf("dead letters: %d, %v; want %d (%v)", len(dead), err, len(deadIDs), deadIDs)
	}
	b.do("overview", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#dead-h")), b.shot("overview"))
	if got := b.text("#dead-h + .big a"); got != fmt.Sprint(len(dead)) {
		t.Errorf("overview: %q dead letters now, want %d", got, len(dead))
	}
	wantCompleted := 0
	for _, r := range runs {
		if r.Status == store.RunCompleted {
			wantCompleted++
		}
	}
	if got := b.text(".count.status-completed dd"); got != fmt.Sprint(wantCompleted) {
		t.Errorf("overview: %q runs completed, want %d", got, wantCompleted)
	}
	// The first Tab reaches the skip link.
	b.do("tab", chromedp.KeyEvent(kb.Tab))
	if got := value(b, "focus", chromedp.Evaluate[string](`document.activeElement.className`)); got != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}

	// Search: the key finds the choreographed order, at a URL that can be
	// bookmarked.
	b.do("search", chromedp.Navigate(url+"/search"), chromedp.SendKeys(chromedp.CSS(`input[name="key"]`), "o-000056"),
		chromedp.Submit(chromedp.CSS(`input[name="key"]`)), chromedp.WaitVisible(chromedp.CSS("a.found")), b.shot("search"))
	found, location := b.text("a.found"), value(b, "location", chromedp.Location())
	if found != "o-000056" || !strings.Contains(location, "/search?key=o-000056") {
		t.Errorf("search for o-000056: found %q at %s", found, location)
	}

	// Its transaction: a lane per service that journaled, a row per entry.
	history, err := c.History(ctx, "o-000056")
	if err != nil || len(history) == 0 {
		t.Fatalf("history of o-000056: %d entries, %v", len(history), err)
	}
	b.do("transaction", chromedp.Click(chromedp.CSS("a.found")), chromedp.WaitVisible(chromedp.CSS(".timeline")), b.shot("transaction"))
	lanes := b.texts(".lane-name")
	for _, e := range history {
		if e.Group != "" && !slices.Contains(lanes, e.Group) {
			t.Errorf("transaction o-000056: no lane for %s in %v", e.Group, lanes)
		}
	}
	if rows := b.count("table.entries tbody tr"); rows != len(history) {
		t.Errorf("transaction o-000056: %d journal rows, want %d", rows, len(history))
	}

	// An orchestrated order whose stock ran out: the run's status, its
	// flow's graph with the steps, and a row per step.
	var refunded store.Run
	for _, r := range runs {
		if r.Key == kinds[orders.OutOfStock] {
			refunded = r
		}
	}
	b.do("orchestrated transaction", chromedp.Navigate(url+"/tx/"+refunded.Key), chromedp.WaitVisible(chromedp.CSS(".run-status")), b.shot("transaction-run"))
	if got := b.text(".run-status"); got != string(refunded.Status) {
		t.Errorf("run of %s: the page says %q, the API %q", refunded.Key, got, refunded.Status)
	}
	nodes := b.texts(".graph .node text:first-of-type")
	for _, step := range []string{"charge", "reserve", "notify", "complete"} {
		if !slices.Contains(nodes, step) {
			t.Errorf("run of %s: no %s in the graph %v", refunded.Key, step, nodes)
		}
	}
	if got := b.count("section[id^='run-'] table tbody tr"); got != len(refunded.Steps) {
		t.Errorf("run of %s: %d step rows, want %d", refunded.Key, got, len(refunded.Steps))
	}

	// Map: services and types, red where dead letters were.
	b.do("map", chromedp.Navigate(url+"/map?window=1h"), chromedp.WaitVisible(chromedp.CSS(".graph svg")), b.shot("map"))
	nodes = b.texts(".graph .node text:first-of-type")
	for _, want := range []string{"payment", "inventory", orders.TypeOrderPlaced} {
		if !slices.Contains(nodes, want) {
			t.Errorf("map: no %s in %v", want, nodes)
		}
	}
	if b.count(".edge.bad") == 0 {
		t.Error("map: no red edge, though payment dead-lettered orders")
	}

	// Flows: the order flow's graph.
	b.do("flows", chromedp.Navigate(url+"/flows"), chromedp.WaitVisible(chromedp.CSS(".graph svg")), b.shot("flows"))
	if nodes := b.texts(".graph .node text:first-of-type"); !slices.Contains(nodes, "charge") {
		t.Errorf("flows: no charge step in %v", nodes)
	}

	// Schedules: pause one.
	if _, err := c.PutSchedule(ctx, store.Schedule{Name: "nightly-order", Flow: "order", Cron: "0 3 * * *", Input: json.RawMessage(orderInput(900))}); err != nil {
		t.Fatal(err)
	}
	b.do("schedules", chromedp.Navigate(url+"/schedules"), chromedp.WaitVisible(chromedp.CSS(`button[data-pause="nightly-order"]`)), b.shot("schedules"),
		chromedp.Click(chromedp.CSS(`button[data-pause="nightly-order"]`)), chromedp.WaitVisible(chromedp.CSS(`button[data-resume="nightly-order"]`)))
	if sc, err := c.Schedule(ctx, "nightly-order"); err != nil || !sc.Paused {
		t.Errorf("after Pause: %+v, %v", sc, err)
	}

	// Dead letters: a bulk replay, confirmed with the count, empties the
	// list; the orders then complete.
	b.do("dead letters", chromedp.Navigate(url+"/dead-letters"), chromedp.WaitVisible(chromedp.CSS("#dead-list")), b.shot("dead-letters"))
	if got := b.count("#dead-list tbody tr"); got != len(dead) {
		t.Errorf("dead letters: %d rows, want %d", got, len(dead))
	}
	b.do("bulk replay", chromedp.Click(chromedp.CSS(`button[data-bulk="replay"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm")), b.shot("dead-letters-confirm"))
	if ask, want := b.text("#confirm-text"), fmt.Sprintf("Replay %d dead letter", len(dead)); !strings.Contains(ask, want) {
		t.Errorf("the confirmation says %q, want %q in it", ask, want)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")), chromedp.WaitVisible(chromedp.CSS("#dead-empty")))
	if left, err := c.ListDead(ctx, "", 1000); err != nil || len(left) != 0 {
		t.Errorf("after the replay: %d dead letters, %v", len(left), err)
	}
	for _, id := range deadIDs {
		for {
			h, err := c.History(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(h, func(e store.Entry) bool { return e.EventType == orders.TypeOrderCompleted }) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Live tail: a new run's entries appear; paused, they wait.
	live := `document.getElementById("tail-state").textContent === "Live"`
	b.do("tail", chromedp.Navigate(url+"/tail?correlation=o-000301"), chromedp.WaitVisible(chromedp.CSS("#tail")), chromedp.Poll[chromedp.Void](live))
	start("o-000301")
	b.do("tail rows", chromedp.Poll[chromedp.Void](`document.querySelector("#tail tbody").textContent.includes("order.completed.v1")`), b.shot("tail"))
	b.do("a paused tail", chromedp.Navigate(url+"/tail?correlation=o-000303"), chromedp.WaitVisible(chromedp.CSS("#tail")),
		chromedp.Poll[chromedp.Void](live), chromedp.Click(chromedp.CSS("#tail-pause")))
	ended(start("o-000303"))
	b.do("held rows", chromedp.Poll[chromedp.Void](`document.getElementById("tail-state").textContent.startsWith("Paused: ")`))
	if got := b.count("#tail tbody tr"); got != 0 {
		t.Errorf("a paused tail shows %d rows of o-000303 (%s)", got, b.text("#tail-state"))
	}
	b.do("resume", chromedp.Click(chromedp.CSS("#tail-pause")), chromedp.Poll[chromedp.Void](`document.querySelectorAll("#tail tbody tr").length > 0`))

	// A phone's width, and the dark theme.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#dead-h")), b.shot("overview-phone"))
	b.do("dark", chromedp.EmulateViewport(1280, 800), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}), chromedp.Navigate(url+"/tx/"+refunded.Key), chromedp.WaitVisible(chromedp.CSS(".run-status")), b.shot("transaction-run-dark"))
}

// tab is a browser tab driven by a test.
type tab struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func value[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(value(b, sel, chromedp.Text(chromedp.CSS(sel))))
}

func (b *tab) texts(sel string) []string {
	b.t.Helper()
	return value(b, sel, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim())`, sel)))
}

func (b *tab) count(sel string) int {
	b.t.Helper()
	return value(b, sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// shot saves a PNG of the whole page as NAME.png.
func (b *tab) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644)
	})
}

var dashboardLine = regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+)/`)

// baton demo --serve prints the dashboard's URL before it places orders,
// and serves it, with the API beside it, until stopped.
func TestDemoServesDashboard(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut}, []string{"demo", "--orders", "20", "--fail-rate", "0.3", "--serve", "--addr", "127.0.0.1:0"})
	}()
	waitFor(t, "the dashboard's URL", func() bool { return dashboardLine.MatchString(errOut.String()) }, done, &errOut)
	url := dashboardLine.FindStringSubmatch(errOut.String())[1]
	waitFor(t, "the orders to end", func() bool { return strings.Contains(errOut.String(), "serving "+url) }, done, &errOut)
	for path, want := range map[string]string{"/": "Dead letters now", "/tx/o-000001": "order.placed.v1", "/v1/dead-letters": `"dead_letters"`} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want 200 with %q in:\n%.500s", path, resp.StatusCode, want, body)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo ended with %d:\n%s", code, errOut.String())
	}
	if r := batonCmd(t, context.Background(), "demo", "--serve", "--addr", "0.0.0.0:0"); r.code != 2 || !strings.Contains(r.stderr, "is not loopback") {
		t.Errorf("demo --serve beyond loopback: exit %d: %s", r.code, r.stderr)
	}
}

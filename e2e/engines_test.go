package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The private instances of the engines. Each is started by the test that
// needs it, on free loopback ports, with its data in a directory of its own,
// and is stopped when that test ends; the instances the other packages'
// tests share are never touched.

// readyLimit bounds how long an engine may take to start or come back. It
// is generous: the machine may be busy with other packages' tests.
const readyLimit = 2 * time.Minute

// need reports that something the test needs is missing: a failure in CI,
// where it must be there, a skip elsewhere.
func need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// program finds an executable: the first of the candidates (paths, with
// globs, the highest match first) that exists, or name on PATH.
func program(t testing.TB, name, install string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		matches, _ := filepath.Glob(c)
		slices.SortFunc(matches, func(a, b string) int { return compareVersions(b, a) })
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return m
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		need(t, "%s is not installed (%s); %s", name, strings.Join(append(candidates, "PATH"), ", "), install)
	}
	return p
}

// compareVersions orders paths holding version numbers numerically, so that
// .../postgresql/15/... comes after .../postgresql/9/....
func compareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	}
	na, nb := split(a), split(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		x, _ := strconv.Atoi(na[i])
		y, _ := strconv.Atoi(nb[i])
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// freePort returns a loopback TCP port that nothing listens on now. It
// avoids 35672-35682, where rabbitmqctl listens for its own distribution.
func freePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port < 35672 || port > 35682 {
			return port
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// proc is a server process the test started and owns. It runs in a process
// group of its own, so that a server started through a script (RabbitMQ's)
// can be killed with the processes the script started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once it has exited
	err     error         // how it exited; read after done
}

// start starts path with args, its output appended to logPath. cred, when
// not nil, is the user it runs as.
func start(t testing.TB, name, logPath string, cred *syscall.Credential, env []string, path string, args ...string) *proc {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process and waits for it to exit; after limit it
// kills its whole process group. Stopping a process that has exited does
// nothing.
func (p *proc) stop(t testing.TB, sig syscall.Signal, limit time.Duration) {
	t.Helper()
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Logf("%s did not exit within %v of %v; killing its process group", p.name, limit, sig)
		p.killGroup()
	}
}

// killGroup kills the process and everything it started, and waits.
func (p *proc) killGroup() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// tail is the end of the process's output, for a failure message.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// await polls ready until it succeeds, the process exits or readyLimit
// passes; the test fails in the two last cases.
func (p *proc) await(t testing.TB, ready func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(readyLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if p.exited() {
			t.Fatalf("%s exited while starting (%v): %v\n%s", p.name, p.err, err, p.tail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v\n%s", p.name, readyLimit, err, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restarter is an engine the fault test can take away and bring back.
type restarter interface {
	// stop takes the engine down.
	stop(t testing.TB)
	// start starts it again and returns once it serves.
	start(t testing.TB)
	// how says how stop takes the engine down.
	how() string
}

// natsServer is a private nats-server with JetStream.
type natsServer struct {
	bin, dir string
	port     int
	p        *proc
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	s := &natsServer{
		bin:  program(t, "nats-server", "apt-get install nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"),
		dir:  t.TempDir(),
		port: freePort(t),
	}
	s.launch(t)
	t.Cleanup(func() { s.p.stop(t, syscall.SIGTERM, 30*time.Second) })
	return s
}

func (s *natsServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) launch(t testing.TB) {
	t.Helper()
	s.p = start(t, "nats-server", filepath.Join(s.dir, "nats-server.log"), nil, nil, s.bin,
		"-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", filepath.Join(s.dir, "jetstream"))
	s.p.await(t, func(ctx context.Context) error {
		line, err := greeting(ctx, s.port, "")
		if err == nil && !strings.Contains(line, `"jetstream":true`) {
			err = fmt.Errorf("JetStream not on yet: %s", line)
		}
		return err
	})
}

func (s *natsServer) how() string { return "SIGKILL, then started again on the same port and store" }

// stop kills the server rather than stopping it: nats-server 2.9.10
// (Debian 12's), stopped with SIGTERM or SIGINT under load, acknowledges
// publishes that arrive while it shuts JetStream down and then does not
// have them after the restart, in a stream with interest retention as
// natsbus uses — with nats.go alone, no Baton code involved. A kill, which
// leaves what the server wrote to the kernel, loses nothing. Its
// graceful alternative, lame duck mode, takes at least 30 s.
func (s *natsServer) stop(t testing.TB) {
	t.Helper()
	s.p.stop(t, syscall.SIGKILL, 30*time.Second)
}

func (s *natsServer) start(t testing.TB) {
	t.Helper()
	s.launch(t)
}

// greeting connects to a server on port, sends say (if any) and returns
// the first line it answers.
func greeting(ctx context.Context, port int, say string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if say != "" {
		if _, err := conn.Write([]byte(say)); err != nil {
			return "", err
		}
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// redisServer is a private redis-server that logs every write to its
// append-only file and fsyncs it before answering, so that what it
// acknowledged survives a kill.
type redisServer struct {
	bin, dir string
	port     int
	p        *proc
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	s := &redisServer{
		bin:  program(t, "redis-server", "apt-get install redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"),
		dir:  t.TempDir(),
		port: freePort(t),
	}
	s.launch(t)
	t.Cleanup(func() { s.p.stop(t, syscall.SIGTERM, 30*time.Second) })
	return s
}

func (s *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) launch(t testing.TB) {
	t.Helper()
	s.p = start(t, "redis-server", filepath.Join(s.dir, "redis-server.log"), nil, nil, s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no")
	s.p.await(t, func(ctx context.Context) error {
		line, err := greeting(ctx, s.port, "PING\r\n")
		if err == nil && strings.TrimSpace(line) != "+PONG" {
			err = fmt.Errorf("PING answered %q", strings.TrimSpace(line))
		}
		return err
	})
}

func (s *redisServer) how() string {
	return "SIGKILL (appendfsync always), then started again on the same port and directory"
}

func (s *redisServer) stop(t testing.TB) {
	t.Helper()
	s.p.stop(t, syscall.SIGKILL, 30*time.Second)
}

func (s *redisServer) start(t testing.TB) {
	t.Helper()
	s.launch(t)
}

// pgServer is a private PostgreSQL cluster. Run as root, the test runs it
// as the user postgres, since PostgreSQL refuses to run as root.
type pgServer struct {
	initdb, postgres string
	dir              string // holds the cluster (data) and the socket
	port             int
	cred             *syscall.Credential
	p                *proc
}

func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	const install = "apt-get install postgresql"
	s := &pgServer{
		initdb:   program(t, "initdb", install, "/usr/lib/postgresql/*/bin/initdb"),
		postgres: program(t, "postgres", install, "/usr/lib/postgresql/*/bin/postgres"),
		port:     freePort(t),
	}
	if filepath.Dir(s.initdb) != filepath.Dir(s.postgres) {
		need(t, "initdb (%s) and postgres (%s) are not of one PostgreSQL installation", s.initdb, s.postgres)
	}
	// Not t.TempDir: the user postgres must reach the directory, and the
	// test's temporary directories are private to root.
	dir, err := os.MkdirTemp("", "batonfault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			need(t, "running as root, the test runs PostgreSQL as the user postgres, which does not exist: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// -N: the new cluster need not be synced to disk; the server runs with
	// fsync on.
	initdb := start(t, "initdb", filepath.Join(dir, "initdb.log"), s.cred, nil, s.initdb,
		"-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "-N")
	select {
	case <-initdb.done:
	case <-time.After(readyLimit):
		initdb.killGroup()
	}
	if initdb.err != nil {
		t.Fatalf("initdb: %v\n%s", initdb.err, initdb.tail())
	}
	s.launch(t)
	t.Cleanup(func() { s.p.stop(t, syscall.SIGINT, time.Minute) }) // fast shutdown
	return s
}

func (s *pgServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

func (s *pgServer) launch(t testing.TB) {
	t.Helper()
	s.p = start(t, "postgres", filepath.Join(s.dir, "postgres.log"), s.cred, nil, s.postgres,
		"-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on")
	s.p.await(t, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return conn.Ping(ctx)
	})
}

func (s *pgServer) how() string {
	return "immediate shutdown (SIGQUIT: no checkpoint, recovery from the WAL on start), then started again"
}

func (s *pgServer) stop(t testing.TB) {
	t.Helper()
	s.p.stop(t, syscall.SIGQUIT, time.Minute)
}

func (s *pgServer) start(t testing.TB) {
	t.Helper()
	s.launch(t)
}

// rabbitNode is a private RabbitMQ node, with an Erlang port mapper (epmd)
// and a cookie of its own. The node runs in the foreground as the test's
// child; rabbitmqctl reaches it through the private epmd.
type rabbitNode struct {
	server, ctl string
	node        string // batonfault-<random>@localhost
	dir         string
	port        int
	env         []string // for the node and rabbitmqctl alike
	epmd, p     *proc
}

func startRabbitMQ(t testing.TB) *rabbitNode {
	t.Helper()
	const install = "apt-get install rabbitmq-server"
	// Debian's /usr/sbin/rabbitmq-server switches to the user rabbitmq,
	// dropping the environment that makes the node private: the scripts
	// under /usr/lib/rabbitmq come first.
	n := &rabbitNode{
		server: program(t, "rabbitmq-server", install,
			"/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"),
		ctl: program(t, "rabbitmqctl", install,
			"/usr/lib/rabbitmq/bin/rabbitmqctl", "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmqctl"),
		node: "batonfault-" + randomHex(4) + "@localhost",
		dir:  t.TempDir(),
		port: freePort(t),
	}
	epmd := program(t, "epmd", install, "/usr/bin/epmd", "/usr/lib/erlang/erts-*/bin/epmd")
	home := filepath.Join(n.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(strings.ToUpper(randomHex(10))), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "enabled_plugins"), []byte("[].\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq-env.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	epmdPort := freePort(t)
	n.env = []string{
		"HOME=" + home,
		"ERL_EPMD_PORT=" + strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_NODENAME=" + n.node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(freePort(t)),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(n.dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR=" + filepath.Join(n.dir, "plugins-expand"),
		"RABBITMQ_PID_FILE=" + filepath.Join(n.dir, "rabbitmq.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(n.dir, "rabbitmq"), // none: the defaults
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(n.dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(n.dir, "rabbitmq-env.conf"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	}
	n.epmd = start(t, "epmd", filepath.Join(n.dir, "epmd.log"), nil, nil, epmd,
		"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	t.Cleanup(func() { n.epmd.stop(t, syscall.SIGTERM, 10*time.Second) })
	n.epmd.await(t, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", epmdPort))
		if err == nil {
			c.Close()
		}
		return err
	})

	n.p = start(t, "rabbitmq-server", filepath.Join(n.dir, "rabbitmq-server.log"), nil, n.env, n.server)
	t.Cleanup(func() {
		if !n.p.exited() {
			if out, err := n.rabbitmqctl("stop"); err != nil {
				t.Logf("rabbitmqctl stop: %v\n%s", err, out)
			}
		}
		n.p.stop(t, syscall.SIGTERM, time.Minute)
		n.p.killGroup() // the script's children, if the script went first
	})
	n.awaitAMQP(t)
	return n
}

func (n *rabbitNode) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port) }

// awaitAMQP waits until the broker accepts AMQP connections: its listener
// opens once the rabbit application has booted.
func (n *rabbitNode) awaitAMQP(t testing.TB) {
	t.Helper()
	n.p.await(t, func(ctx context.Context) error {
		conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// rabbitmqctl runs rabbitmqctl against the node.
func (n *rabbitNode) rabbitmqctl(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.ctl, append([]string{"-n", n.node}, args...)...)
	cmd.Env = append(os.Environ(), n.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (n *rabbitNode) how() string {
	return "rabbitmqctl stop_app, then start_app (the Erlang node stays up)"
}

func (n *rabbitNode) stop(t testing.TB) {
	t.Helper()
	if out, err := n.rabbitmqctl("stop_app"); err != nil {
		t.Fatalf("rabbitmqctl stop_app: %v\n%s", err, out)
	}
}

func (n *rabbitNode) start(t testing.TB) {
	t.Helper()
	if out, err := n.rabbitmqctl("start_app"); err != nil {
		t.Fatalf("rabbitmqctl start_app: %v\n%s", err, out)
	}
	n.awaitAMQP(t)
}

// ring keeps the last lines written to it: the runtime's and the backends'
// logs, shown when a test fails.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	total int
}

func newRing(n int) *ring { return &ring{lines: make([]string, 0, n)} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		r.total++
		if len(r.lines) < cap(r.lines) {
			r.lines = append(r.lines, line)
			continue
		}
		r.lines[r.next] = line
		r.next = (r.next + 1) % len(r.lines)
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Concat(r.lines[r.next:], r.lines[:r.next])
	return fmt.Sprintf("last %d of %d log lines:\n%s", len(out), r.total, strings.Join(out, "\n"))
}

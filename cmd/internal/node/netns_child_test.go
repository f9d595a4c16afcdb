package node

// The child side of the netns harness (netns_test.go): a test function of
// this binary re-executed inside a namespace, the key=value results it
// reports, and how the parent waits for it and stops it.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// isNetnsChild reports whether this process was started to run t inside a
// namespace.
func isNetnsChild(t *testing.T) bool { return os.Getenv(netnsChildEnv) == t.Name() }

// skipUnlessNetnsChild makes a test function a child-only body: in a normal
// run it is skipped.
func skipUnlessNetnsChild(t *testing.T) {
	t.Helper()
	if !isNetnsChild(t) {
		t.Skip("runs inside a network namespace, started by a netns test")
	}
}

// netnsResult reports a key=value result from a child to its parent.
func netnsResult(key string, value any) {
	fmt.Printf("%s%s=%v\n", netnsResultTag, key, value)
}

// netnsEnv reads a parameter the parent passed to a child.
func netnsEnv(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("child %s: %s not set", t.Name(), key)
	}
	return v
}

// netnsChild is a test function of this binary running in a namespace.
type netnsChild struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process is reaped and its output drained

	mu      sync.Mutex
	out     []string
	results map[string]string
	changed chan struct{} // closed and replaced on every result
	err     error
}

// startChild runs test (a top-level test function name) inside namespace
// ns, with extra environment "K=V" entries. Its output is streamed to t's
// log line by line; t.Cleanup stops it if it still runs.
func (p *netnsPair) startChild(t *testing.T, ns, test string, env ...string) *netnsChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p.spawn(t, ns, test, append([]string{netnsChildEnv + "=" + test}, env...),
		exe, "-test.run", "^"+test+"$", "-test.v", "-test.count=1", "-test.timeout=10m")
}

// spawn runs argv inside namespace ns under name, with extra environment
// entries; its output is streamed to t's log and t.Cleanup stops it.
func (p *netnsPair) spawn(t *testing.T, ns, name string, env []string, argv ...string) *netnsChild {
	t.Helper()
	c := &netnsChild{name: ns + "/" + name, done: make(chan struct{}), results: map[string]string{}, changed: make(chan struct{})}
	c.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = c.stop(5 * time.Second) })
	go c.read(t, r)
	return c
}

func (c *netnsChild) read(t *testing.T, r *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Logf("%s| %s", c.name, line)
		c.mu.Lock()
		c.out = append(c.out, line)
		if kv, ok := strings.CutPrefix(line, netnsResultTag); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				c.results[k] = v
				close(c.changed)
				c.changed = make(chan struct{})
			}
		}
		c.mu.Unlock()
	}
	r.Close()
	err := c.cmd.Wait()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// result waits up to d for the child to report key.
func (c *netnsChild) result(key string, d time.Duration) (string, bool) {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		v, ok := c.results[key]
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return v, true
		}
		select {
		case <-ch:
		case <-c.done:
			c.mu.Lock()
			v, ok = c.results[key]
			c.mu.Unlock()
			return v, ok
		case <-deadline:
			return "", false
		}
	}
}

// resultInt is result parsed as an integer (-1 when missing).
func (c *netnsChild) resultInt(key string, d time.Duration) int {
	v, ok := c.result(key, d)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// wait waits up to d for the child to exit and reports whether its test
// passed (a failure, a skip or no matching test is an error).
func (c *netnsChild) wait(d time.Duration) error {
	select {
	case <-c.done:
	default:
		select {
		case <-c.done:
		case <-time.After(d):
			_ = c.stop(5 * time.Second)
			return fmt.Errorf("%s: still running after %v; killed", c.name, d)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	all := strings.Join(c.out, "\n")
	test := c.name[strings.Index(c.name, "/")+1:]
	switch {
	case c.err != nil:
		return fmt.Errorf("%s: %v", c.name, c.err)
	case strings.Contains(all, "--- SKIP: "+test):
		return fmt.Errorf("%s: skipped", c.name)
	case !strings.Contains(all, "--- PASS: "+test):
		return fmt.Errorf("%s: did not pass (no tests to run?)", c.name)
	}
	return nil
}

// stop ends the child: SIGTERM to its process group, SIGKILL after grace.
// It returns wait's verdict.
func (c *netnsChild) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.wait(0)
	default:
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	return c.wait(0)
}

// ---- Fanout and pion inside namespaces ----

// Package redistest runs a real redis-server on a free loopback port for
// the tests of the cluster registry (control/cluster) and of the nodes that
// use it (cmd/internal/node), and FreePort, the loopback ports those tests
// hand to child processes. It is imported by tests only.
//
// The server keeps nothing on disk (--save "" --appendonly no), so Stop
// then Start is a restart that loses every key, as a crashed Redis without
// persistence would.
package redistest

import (
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process; Start and Stop may be called again
// to restart it on the same port. Only the test goroutine uses it.
type Server struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

// New starts a redis-server on a free loopback port and stops it when the
// test ends. It skips the test when redis-server is not installed
// (`.ci/deps.sh test` installs it).
func New(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (.ci/deps.sh test installs it)")
	}
	s := &Server{t: t, port: FreePort(t, "tcp")}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's address as the registry takes it.
func (s *Server) URL() string { return "redis://" + s.addr() + "/0" }

func (s *Server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start runs the server and waits (≤ 5 s) until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", s.addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d did not start: %v", s.port, err)
		}
	}
}

// Stop kills the server (no shutdown save) and waits for it.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// FreePort is a loopback port (network "tcp" or "udp") that a child
// process can bind later. A port the kernel picks (127.0.0.1:0) is in the
// ephemeral range, where any outgoing connection or unbound socket of the
// test's many peers can take it in between ("address already in use"
// from a node started under load); below that range only an explicit
// bind can. A port is never handed out twice by one test binary.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	const floor = 20000
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > floor+1000 {
				lo = n
			}
		}
	}
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		port := floor + rand.IntN(lo-floor)
		if !portsGiven[port] && canBind(network, port) {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatalf("no free %s port in [%d, %d)", network, floor, lo)
	return 0
}

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)

func canBind(network string, port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
	}
	return err == nil
}

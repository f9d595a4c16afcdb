// Package redistest runs a real redis-server on a free loopback port for
// the tests of the cluster registry (control/cluster) and of the nodes that
// use it (cmd/internal/node). It is imported by tests only.
//
// The server keeps nothing on disk (--save "" --appendonly no), so Stop
// then Start is a restart that loses every key, as a crashed Redis without
// persistence would.
package redistest

import (
	"net"
	"os/exec"
	"strconv"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, port: port}
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

// Package netnstest makes the network namespaces of the in-process netns
// tests of bpf and fastpath/xskio: two namespaces joined by a veth pair
// (Veth), and a way to run code on a thread inside one of them (Do).
// cmd/internal/node has its own harness, which runs whole processes in
// namespaces, with loss.
//
// Only test files import it (depguard's rules exempt them); it imports
// the standard library and x/sys alone, within even the fastpath's list.
// Its functions run on the calling test's goroutine; what they make,
// t.Cleanup removes, even when the test fails half way.
package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Require skips unless the test may create network namespaces and load
// BPF (root; CI runs as root) and iproute2 is installed.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_NET_ADMIN and CAP_BPF for network namespaces, XDP and AF_XDP (run as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command (apt-get install iproute2)")
	}
}

// Veth makes two namespaces, a server's (srv) and a client's (cli), named
// after the process and tag, joined by a veth pair whose ends are "v"+srv
// and "v"+cli: the server end 10.199.subnet.1/24, the client end .2, both
// up, as are the namespaces' loopbacks.
func Veth(t testing.TB, tag string, subnet byte) (srv, cli string, srvIP, cliIP netip.Addr) {
	t.Helper()
	srv, cli = fmt.Sprintf("fo%d%ss", os.Getpid()%100000, tag), fmt.Sprintf("fo%d%sc", os.Getpid()%100000, tag)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", srv).Run()
		_ = exec.Command("ip", "netns", "del", cli).Run()
	})
	srvIP = netip.AddrFrom4([4]byte{10, 199, subnet, 1})
	cliIP = netip.AddrFrom4([4]byte{10, 199, subnet, 2})
	for _, args := range [][]string{
		{"netns", "add", srv}, {"netns", "add", cli},
		{"link", "add", "v" + srv, "netns", srv, "type", "veth", "peer", "name", "v" + cli, "netns", cli},
		{"-n", srv, "addr", "add", srvIP.String() + "/24", "dev", "v" + srv},
		{"-n", cli, "addr", "add", cliIP.String() + "/24", "dev", "v" + cli},
		{"-n", srv, "link", "set", "lo", "up"}, {"-n", cli, "link", "set", "lo", "up"},
		{"-n", srv, "link", "set", "v" + srv, "up"}, {"-n", cli, "link", "set", "v" + cli, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	return srv, cli, srvIP, cliIP
}

// Do runs f on an OS thread that has entered namespace name; sockets f
// opens stay in that namespace for their whole life.
func Do(t testing.TB, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err) // the thread stays locked and dies with this goroutine
	}
	runtime.UnlockOSThread()
}

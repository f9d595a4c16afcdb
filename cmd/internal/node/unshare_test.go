package node

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// inPrivateNetns runs the calling test again inside a fresh network
// namespace (unshare -n) after the given shell setup, and reports whether
// the caller is already that inner run. The outer run returns false after
// the inner one finished (its output is relayed, its failure is ours).
//
//	if !inPrivateNetns(t, "ip -6 addr add fd00:fa::1/128 dev lo") { return }
func inPrivateNetns(t *testing.T, setup ...string) bool {
	t.Helper()
	if os.Getenv("FANOUT_INNER_TEST") == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n (CI runs as root)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	script := strings.Join(append([]string{"ip link set lo up"}, setup...), " && ") + ` && exec "$0" "$@"`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "FANOUT_INNER_TEST="+t.Name())
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(l)
	}
	if err != nil {
		t.Fatalf("inner run in a private network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("inner run did not pass")
	}
	return false
}

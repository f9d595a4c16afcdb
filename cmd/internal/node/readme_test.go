package node

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// readmeCheck is the README's "Connectivity check" block with the payloads
// left out: the spec's curl and nc commands on the default ports.
const readmeCheck = `curl "http://localhost:1985%s$(date +%%s)" \
  -H 'Origin: http://localhost' -H 'Referer: http://localhost' \
  -H 'Accept: */*' -H 'Content-type: application/sdp' \
  -H 'User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)' \
  --data-raw $'%s' \
  -v -k
echo -en "%s" \
  |nc -w 3 -u 127.0.0.1 8000 |od -Ax -c -t x1 |grep '000' && \
  echo "Success" || echo "Failed"
`

// readmeCheckBlock returns the first ```sh block under the README's
// "### Connectivity check" heading.
func readmeCheckBlock(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n### Connectivity check")
	if !ok {
		t.Fatal(`README.md has no "### Connectivity check" section`)
	}
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatal("the connectivity check has no ```sh block")
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("the connectivity check's ```sh block is not closed")
	}
	return block
}

// TestREADMEConnectivityCheck: the README's block is byte for byte the
// spec's commands with the offer, query and STUN request that
// TestConnectivityCheck and TestConnectivityCheckShell send, and pasted into
// bash (only the ports moved to the test server's) it gets a 201 with
// candidates and a Binding Success.
func TestREADMEConnectivityCheck(t *testing.T) {
	block := readmeCheckBlock(t)
	want := fmt.Sprintf(readmeCheck, curlQuery, strings.ReplaceAll(curlOffer, "\r\n", `\r\n`), escapeBytes(curlSTUN))
	if block != want {
		t.Fatalf("README's connectivity check differs from the tested commands:\n got %q\nwant %q", block, want)
	}
	for _, tool := range []string{"bash", "curl", "nc", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps-test installs it)", tool)
		}
	}
	srv := startTestServer(t, "")
	script := strings.Replace(block, "localhost:1985", srv.APIAddr().String(), 1)
	script = strings.Replace(script, "127.0.0.1 8000", fmt.Sprintf("127.0.0.1 %d", srv.fp.Port()), 1)
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	for _, w := range []string{"< HTTP/1.1 201 Created", "a=candidate:0 1 udp 2130706431 ",
		"001 001", "6   p   k   1   1   3   8   6", "\nSuccess"} {
		if !strings.Contains(s, w) {
			t.Fatalf("output lacks %q:\n%s", w, s)
		}
	}
}

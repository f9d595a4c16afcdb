package node

import (
	"fmt"
	"strings"
	"testing"
)

// TestBannerCandidate: the start banner names the candidate answers will
// carry (as control computes it) and warns, with the way to change it,
// when that address is loopback or private; a public one gets no warning.
func TestBannerCandidate(t *testing.T) {
	for _, c := range []struct {
		candidate, warn string
	}{
		{"127.0.0.1", "candidate 127.0.0.1 is a loopback address"},
		{"192.168.7.9", "candidate 192.168.7.9 is a private address"},
		{"fd00:fa::9", "candidate fd00:fa::9 is a private address"},
		{"203.0.113.7", ""},
	} {
		t.Run(c.candidate, func(t *testing.T) {
			srv := startTestServerConfig(t, strings.Replace(testConfig, "candidate 127.0.0.1;", "candidate "+c.candidate+";", 1))
			var b strings.Builder
			srv.PrintURLs(&b)
			out := b.String()
			host := c.candidate
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			if want := fmt.Sprintf("Candidate:     udp %s:%d\n", host, srv.fp.Port()); !strings.Contains(out, want) {
				t.Errorf("banner lacks %q:\n%s", want, out)
			}
			warned := strings.Contains(out, "WARNING")
			switch {
			case c.warn == "" && warned:
				t.Errorf("warning for a public candidate:\n%s", out)
			case c.warn != "" && (!strings.Contains(out, c.warn) || !strings.Contains(out, "`candidate`") ||
				!strings.Contains(out, "CANDIDATE=") || !strings.Contains(out, "?eip=")):
				t.Errorf("banner lacks the warning %q with its hint:\n%s", c.warn, out)
			}
		})
	}
}

package httpapi

import (
	"testing"
	"time"
)

func TestProcParsers(t *testing.T) {
	busy, total := cpuTicks("cpu  100 5 50 800 10 2 3 0 7 0\ncpu0 1 2 3 4\n")
	if busy != 160 || total != 970 {
		t.Errorf("cpuTicks: %d %d", busy, total)
	}
	m := memInfo("MemTotal:       1000 kB\nMemFree:         200 kB\nBuffers:          50 kB\nCached:          150 kB\nSwapTotal:       400 kB\nSwapFree:        100 kB\n")
	if m.total != 1000 || m.realInUse() != 600 || m.ramPercent() != 0.6 || m.swapPercent() != 0.75 {
		t.Errorf("memInfo: %+v", m)
	}
	n := netDev("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n" +
		"    lo: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n  eth0: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0\n")
	if n != (netBytes{recv: 300, send: 400, recvLo: 100, sendLo: 200}) {
		t.Errorf("netDev: %+v", n)
	}
	k := sockStat("sockets: used 100\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1\nUDP: inuse 3 mem 1\n")
	if k != (sockets{tcpAlloc: 7, tcpInuse: 5, tcpTW: 2, udpInuse: 3}) {
		t.Errorf("sockStat: %+v", k)
	}
	if f := floats("0.50 0.25 0.10 1/100 42\n", 3); f[0] != 0.5 || f[2] != 0.1 {
		t.Errorf("floats: %v", f)
	}
	st, ok := selfStat("42 (fan out) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 12 0 500 1000 50 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")
	if !ok || st["pid"] != 42 || st["comm"] != "fan out" || st["state"] != "S" || st["ppid"] != int64(1) ||
		st["utime"] != int64(7) || st["num_threads"] != int64(12) {
		t.Errorf("selfStat: %v %v", ok, st)
	}
}

func TestCPUSampler(t *testing.T) {
	var c cpuSampler
	start := time.Unix(100, 0)
	self, sys := c.sample(start.Add(2*time.Second), start, time.Second, 50, 100)
	if self != 0.5 || sys != 0.5 {
		t.Errorf("first: %v %v", self, sys)
	}
	self, sys = c.sample(start.Add(3*time.Second), start, 1250*time.Millisecond, 60, 200)
	if self != 0.25 || sys != 0.1 {
		t.Errorf("second: %v %v", self, sys)
	}
}

func TestH264ProfileLevel(t *testing.T) {
	for _, c := range []struct{ fmtp, profile, level string }{
		{"profile-level-id=42e01f;packetization-mode=1", "Baseline(Constrained)", "3.1"},
		{"profile-level-id=640028", "High", "4"},
		{"profile-level-id=4d001e", "Main", "3"},
		{"packetization-mode=1", "Other", "Other"},
	} {
		if p, l := h264ProfileLevel(c.fmtp); p != c.profile || l != c.level {
			t.Errorf("%s: %s %s, want %s %s", c.fmtp, p, l, c.profile, c.level)
		}
	}
	if v := Video("VP9", ""); v.Profile != nil || v.Level != nil {
		t.Errorf("VP9 profile/level must be null: %+v", v)
	}
}

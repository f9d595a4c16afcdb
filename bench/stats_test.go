package bench

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStreamStatLoss(t *testing.T) {
	tests := []struct {
		name               string
		seqs               []uint16
		received, expected uint64
		gaps, late         uint64
	}{
		{"contiguous", []uint16{10, 11, 12, 13}, 4, 4, 0, 0},
		{"one gap of two", []uint16{10, 11, 14, 15}, 4, 6, 1, 0},
		{"wrap", []uint16{65534, 65535, 0, 1}, 4, 4, 0, 0},
		{"wrap with gap", []uint16{65534, 1, 2}, 3, 5, 1, 0},
		{"reorder", []uint16{1, 3, 2, 4}, 4, 4, 1, 1},
		{"duplicate", []uint16{1, 2, 2, 3}, 4, 3, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := streamStat{clock: 90000}
			for i, q := range tc.seqs {
				s.update(q, uint32(i*3000), int64(i)*33_000_000)
			}
			if s.received != tc.received || s.expected != tc.expected || s.gaps != tc.gaps || s.late != tc.late {
				t.Fatalf("got received=%d expected=%d gaps=%d late=%d, want %d %d %d %d",
					s.received, s.expected, s.gaps, s.late, tc.received, tc.expected, tc.gaps, tc.late)
			}
		})
	}
}

func TestJitterZeroForPerfectPacing(t *testing.T) {
	s := streamStat{clock: 90000}
	for i := range 100 {
		s.update(uint16(i), uint32(i*3000), int64(i)*1_000_000_000/30)
	}
	if j := s.jitterMs(); j > 0.05 {
		t.Fatalf("jitter %.3f ms for perfect pacing", j)
	}
}

func TestLossRatio(t *testing.T) {
	if got := lossRatio(90, 100); got < 0.0999 || got > 0.1001 {
		t.Fatalf("lossRatio(90,100) = %v", got)
	}
	if lossRatio(0, 0) != 0 || lossRatio(101, 100) != 0 {
		t.Fatal("lossRatio must clamp to 0")
	}
}

func TestHistQuantile(t *testing.T) {
	var h hist
	for v := uint64(1); v <= 1000; v++ {
		h.add(v * 100) // 100 µs .. 100 ms, uniform
	}
	c := h.snapshot()
	for _, tc := range []struct{ q, want float64 }{{0.5, 50_000}, {0.99, 99_000}} {
		got := histQuantile(c, tc.q)
		if got < tc.want*0.9 || got > tc.want*1.1 {
			t.Errorf("q%.2f = %.0f µs, want about %.0f", tc.q, got, tc.want)
		}
	}
	if histQuantile(make([]uint64, histBuckets), 0.5) != -1 {
		t.Error("empty histogram must give -1")
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		i := histIndex(us)
		if v := histValue(i); us >= 8 && (v < float64(us)*0.85 || v > float64(us)*1.15) {
			t.Fatalf("bucket value %.0f for %d µs", v, us)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	line := "1234 (my (weird) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 7 0 100 123456789 4321 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	ps, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ps.utime != 250 || ps.stime != 75 || ps.threads != 7 || ps.rssPages != 4321 {
		t.Fatalf("parsed %+v", ps)
	}
	if ps.cpuMicros() != 3_250_000 {
		t.Fatalf("cpuMicros = %d", ps.cpuMicros())
	}
	if _, err := parseProcStat([]byte("1234 (x) S 1 2")); err == nil {
		t.Fatal("short line must fail")
	}
	if _, err := parseProcStat([]byte("no paren")); err == nil {
		t.Fatal("missing comm must fail")
	}
	self, err := readProcStat(os.Getpid(), 0)
	if err != nil || self.threads < 1 || self.rssPages < 1 {
		t.Fatalf("self stat %+v %v", self, err)
	}
	if us, err := processCPUMicros(os.Getpid()); err != nil || us == 0 {
		t.Fatalf("process cpu clock %d %v", us, err)
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := ParseCPUList("0,2-4, 7")
	if err != nil || len(got) != 5 || got[0] != 0 || got[1] != 2 || got[3] != 4 || got[4] != 7 {
		t.Fatalf("ParseCPUList = %v %v", got, err)
	}
	for _, bad := range []string{"x", "3-1", "1-y"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) must fail", bad)
		}
	}
}

// TestJSONFieldNames pins the names other tools read.
func TestJSONFieldNames(t *testing.T) {
	b, err := json.Marshal(Report{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subscribers_connected", "loss_ratio", "egress_pps", "server_cpu_percent",
		"server_cpu_us_per_egress_packet", "latency_p50_ms", "latency_p99_ms", "connect_p99_ms",
		"first_keyframe_p99_ms", "bench_cpu_us_per_packet", "floor_cpu_us_per_packet"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON field %q missing", k)
		}
	}
}

func TestParseProm(t *testing.T) {
	in := "# HELP x\n# TYPE fanout_packets_total counter\nfanout_packets_total{core=\"0\",dir=\"out\"} 1500\n" +
		"fanout_sessions 3\nbad line\n"
	m := parseProm(strings.NewReader(in))
	if m[`fanout_packets_total{core="0",dir="out"}`] != 1500 || m["fanout_sessions"] != 3 || len(m) != 2 {
		t.Fatalf("parseProm = %v", m)
	}
	d := metricsDelta(map[string]float64{"a": 1, "b": 2}, map[string]float64{"a": 5, "b": 2, "c": 7})
	if d["a"] != 4 || d["c"] != 7 || len(d) != 2 {
		t.Fatalf("metricsDelta = %v", d)
	}
}

func TestReportFiles(t *testing.T) {
	dir := t.TempDir()
	rep := &Report{Result: Result{Mode: "sweep", Server: "127.0.0.1:1"}}
	for i, n := range []int{100, 500, 1000} {
		rep.Steps = append(rep.Steps, Result{SubscribersRequested: n, SubscribersConnected: n,
			ServerCPUPercent: float64(10 * (i + 1)), LossRatio: float64(i) / 100, LatencyP50Ms: -1})
	}
	md, err := WriteReport(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(md)
	if !bytes.Contains(text, []byte("| 500 | 500 |")) || !bytes.Contains(text, []byte("cores")) {
		t.Fatalf("report:\n%s", text)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) != 1 {
		t.Fatalf("png files %v", pngs)
	}
	f, _ := os.Open(pngs[0])
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() != plotW {
		t.Fatalf("png decode: %v", err)
	}
	var tbl bytes.Buffer
	rep.WriteTable(&tbl)
	// Header, three steps and the receive-mode line.
	if !strings.Contains(tbl.String(), "n/a") || !strings.Contains(tbl.String(), "\nreceive: epoll") ||
		strings.Count(tbl.String(), "\n") != 5 {
		t.Fatalf("table:\n%s", tbl.String())
	}
}

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine is the facts a result is only meaningful with.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	Host      string `json:"host"`
	Time      string `json:"time"`
}

// MachineFacts reads the CPU model, core count, kernel, Go version and the
// git commit of the working directory.
func MachineFacts() *Machine {
	m := &Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: "unknown",
		Time: time.Now().UTC().Format(time.RFC3339)}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
		m.Host = unix.ByteSliceToString(u.Nodename[:])
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += "-dirty"
		}
	}
	return m
}

// WriteReport writes NAME.json, NAME.md (and NAME.png for ramp/sweep) into
// dir, where NAME is a UTC timestamp, the mode and the server. It returns
// the Markdown path.
func WriteReport(dir string, rep *Report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report dir: %w", err)
	}
	if rep.Machine == nil {
		rep.Machine = MachineFacts()
	}
	server := strings.NewReplacer(":", "_", "/", "_").Replace(rep.Server)
	name := fmt.Sprintf("%s-%s-%s", time.Now().UTC().Format("20060102T150405Z"), rep.Mode, server)
	base := filepath.Join(dir, name)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("report json: %w", err)
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("report json: %w", err)
	}
	var png string
	if len(rep.Steps) > 1 {
		png = base + ".png"
		if err := WritePlot(png, rep.Steps); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(base+".md", []byte(markdownReport(rep, filepath.Base(png))), 0o644); err != nil {
		return "", fmt.Errorf("report md: %w", err)
	}
	return base + ".md", nil
}

func markdownReport(rep *Report, png string) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "# fanout-bench: %s against %s\n\n", rep.Mode, rep.Server)
	fmt.Fprintf(&b, "- when: %s\n- command: `%s`\n", m.Time, rep.Command)
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s, %s, commit %s\n", m.CPUModel, m.Cores, m.Kernel, m.GoVersion, m.Commit)
	fmt.Fprintf(&b, "- stream: %d bps synthetic H.264 + Opus, 1200-byte video packets; window %.1f s per step\n",
		rep.BitrateBPS, rep.DurationS)
	rows := rep.Steps
	if len(rows) == 0 {
		rows = []Result{rep.Result}
	}
	fmt.Fprintf(&b, "- receive: %s\n\n", receiveDoc(&rows[0]))
	b.WriteString(markdownTable(rows))
	b.WriteString(markdownNodes(rows))
	if line := rep.rampLine(); line != "" {
		fmt.Fprintf(&b, "\nRamp: **%s**\n", line)
	}
	if png != "" {
		fmt.Fprintf(&b, "\n![CPU and loss against subscribers](%s)\n\nPlot: blue = server CPU %% (left axis), red = loss %% (right axis), x = subscribers.\n", png)
	}
	b.WriteString("\nColumns: *server µs/pkt* is server CPU (user+sys from /proc/PID/stat) per packet received by the " +
		"bench; *floor µs/pkt* is the bare GCM + sendmmsg loop's sender CPU per packet at the same subscriber count " +
		"and rate, measured in the same run and received the same way; *bench µs/pkt* is the CPU of the bench's " +
		"receive threads per packet (recvmmsg + accounting + SRTP verification of 1 packet in 16). n/a = not measured.\n")
	b.WriteString(receiveColumns(rows[0].ReceiveMode))
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "\nnote: %s\n", e)
	}
	return b.String()
}

// receiveColumns is the column doc that depends on the receive mode.
func receiveColumns(mode string) string {
	switch mode {
	case "poll":
		return "\nReceive mode poll (-rx-poll): the readers never block in epoll_wait; after a round that found " +
			"nothing they sleep the -rx-poll interval, like a NIC's interrupt coalescing, so the server's sends " +
			"do not wake them (on loopback that wake-up runs in the sender's syscall and is charged to the server). " +
			"Arrival is timed once per recvmmsg batch, so *latency* and *jitter* include up to one interval of " +
			"waiting.\n"
	case "sink":
		return "\nReceive mode sink (-sink): as soon as a subscriber is connected and has seen its first keyframe " +
			"(or at the end of its step without one), its reader gives its socket an eBPF socket filter, which " +
			"counts its RTP media and drops every datagram unqueued, and stops reading it. *loss* = 1 − counted ÷ (publisher packets in the window × sink subscribers). Both are read " +
			"with the publisher held at a video frame edge until the server has delivered its backlog, so both " +
			"window edges cut the stream alike; media still undelivered 100 ms after the window end counts as " +
			"lost and fails a ramp step (`sink_drain_ms`, `sink_behind` in JSON). *latency* and *jitter* are not " +
			"measured (n/a); *bench µs/pkt* is the " +
			"receive threads' CPU (keepalives only) per counted packet. The filter runs in the server's send " +
			"syscall, so its cost is in *server µs/pkt*, as the enqueue it replaces would be.\n"
	}
	return ""
}

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
	fmt.Fprintf(&b, "- stream: %d bps synthetic H.264 + Opus, 1200-byte video packets; window %.1f s per step\n\n",
		rep.BitrateBPS, rep.DurationS)
	rows := rep.Steps
	if len(rows) == 0 {
		rows = []Result{rep.Result}
	}
	b.WriteString(markdownTable(rows))
	if rep.RampMaxSubscribers > 0 {
		fmt.Fprintf(&b, "\nRamp: maximum subscribers with loss under the threshold: **%d**\n", rep.RampMaxSubscribers)
	}
	if png != "" {
		fmt.Fprintf(&b, "\n![CPU and loss against subscribers](%s)\n\nPlot: blue = server CPU %% (left axis), red = loss %% (right axis), x = subscribers.\n", png)
	}
	b.WriteString("\nColumns: *server µs/pkt* is server CPU (user+sys from /proc/PID/stat) per packet received by the " +
		"bench; *floor µs/pkt* is the bare GCM + sendmmsg loop's sender CPU per packet at the same subscriber count " +
		"and rate, measured in the same run; *bench µs/pkt* is the CPU of the bench's receive threads per packet " +
		"(recvmmsg + accounting + SRTP verification of 1 packet in 16). n/a = not measured.\n")
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "\nnote: %s\n", e)
	}
	return b.String()
}

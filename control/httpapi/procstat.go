package httpapi

import (
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procRoot is where the process and system statistics are read (Linux's
// procfs). Elsewhere the files are missing and the API says ok:false.
const procRoot = "/proc"

func readProc(name string) (string, bool) {
	b, err := os.ReadFile(procRoot + "/" + name)
	return string(b), err == nil
}

// cpuSampler turns cumulative CPU times into SRS's cpu_percent between two
// /api/v1/summaries calls (SRS samples on a timer; Fanout samples when
// asked, so the first answer covers the time since start or boot).
type cpuSampler struct {
	mu                sync.Mutex
	at                time.Time
	selfCPU           time.Duration
	sysBusy, sysTotal uint64
}

// sample returns the process's share of one CPU and the system's busy
// share since the last call.
func (c *cpuSampler) sample(now, start time.Time, selfCPU time.Duration, busy, total uint64) (self, system float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		c.at = start
	}
	if wall := now.Sub(c.at); wall > 0 {
		self = float64(selfCPU-c.selfCPU) / float64(wall)
	}
	if total > c.sysTotal {
		system = float64(busy-c.sysBusy) / float64(total-c.sysTotal)
	}
	c.at, c.selfCPU, c.sysBusy, c.sysTotal = now, selfCPU, busy, total
	return self, system
}

// summaries builds data.self and data.system of /api/v1/summaries in
// SRS's shape (srs_api_dump_summaries). Not measured, so 0: disk_*_KBps,
// disk_busy_percent, srs_sample_time, srs_recv_bytes, srs_send_bytes and
// conn_srs (Fanout's own traffic and sessions are under data.fanout).
func (c *cpuSampler) summaries(now, start time.Time) (self, system map[string]any, ok bool) {
	ru := getRusage()
	stat, okStat := readProc("stat")
	mem, okMem := readProc("meminfo")
	busy, total := cpuTicks(stat)
	selfPct, sysPct := c.sample(now, start, ru.cpu, busy, total)
	m := memInfo(mem)
	memPct := 0.0
	if m.total > 0 {
		memPct = float64(ru.maxRSSKB) / float64(m.total)
	}
	cwd, _ := os.Getwd()
	self = map[string]any{
		"version": Version, "pid": os.Getpid(), "ppid": os.Getppid(), "argv": strings.Join(os.Args, " "),
		"cwd": cwd, "mem_kbyte": ru.maxRSSKB, "mem_percent": memPct, "cpu_percent": selfPct,
		"srs_uptime": int64(now.Sub(start).Seconds()),
	}
	up, _ := readProc("uptime")
	load, _ := readProc("loadavg")
	dev, _ := readProc("net/dev")
	sock, _ := readProc("net/sockstat")
	ut, la := floats(up, 2), floats(load, 3)
	n := netDev(dev)
	s := sockStat(sock)
	system = map[string]any{
		"cpu_percent": sysPct, "disk_read_KBps": 0, "disk_write_KBps": 0, "disk_busy_percent": 0,
		"mem_ram_kbyte": m.total, "mem_ram_percent": m.ramPercent(), "mem_swap_kbyte": m.swapTotal,
		"mem_swap_percent": m.swapPercent(), "cpus": runtime.NumCPU(), "cpus_online": runtime.NumCPU(),
		"uptime": ut[0], "ilde_time": ut[1], "load_1m": la[0], "load_5m": la[1], "load_15m": la[2],
		"net_sample_time": now.UnixMilli(), "net_recv_bytes": n.recv, "net_send_bytes": n.send,
		"net_recvi_bytes": n.recvLo, "net_sendi_bytes": n.sendLo,
		"srs_sample_time": 0, "srs_recv_bytes": 0, "srs_send_bytes": 0,
		"conn_sys": s.tcpAlloc, "conn_sys_et": s.tcpInuse, "conn_sys_tw": s.tcpTW, "conn_sys_udp": s.udpInuse,
		"conn_srs": 0,
	}
	return self, system, okStat && okMem
}

// cpuTicks sums /proc/stat's first "cpu" line: busy and total ticks.
func cpuTicks(stat string) (busy, total uint64) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal; guest is inside user
			total += n
			if i != 3 && i != 4 {
				busy += n
			}
		}
	}
	return busy, total
}

// memInfoKB is /proc/meminfo, in kB.
type memInfoKB struct {
	total, free, buffers, cached, swapTotal, swapFree uint64
}

func memInfo(s string) memInfoKB {
	kv := map[string]uint64{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) > 0 {
			kv[k], _ = strconv.ParseUint(f[0], 10, 64)
		}
	}
	return memInfoKB{kv["MemTotal"], kv["MemFree"], kv["Buffers"], kv["Cached"], kv["SwapTotal"], kv["SwapFree"]}
}

// realInUse is SRS's RealInUse: MemTotal - MemFree - Buffers - Cached.
func (m memInfoKB) realInUse() uint64 {
	if used := m.free + m.buffers + m.cached; used < m.total {
		return m.total - used
	}
	return 0
}

func (m memInfoKB) ramPercent() float64 {
	if m.total == 0 {
		return 0
	}
	return float64(m.realInUse()) / float64(m.total)
}

func (m memInfoKB) swapPercent() float64 {
	if m.swapTotal == 0 || m.swapFree > m.swapTotal {
		return 0
	}
	return float64(m.swapTotal-m.swapFree) / float64(m.swapTotal)
}

// floats parses the first n numbers of a line (/proc/uptime, /proc/loadavg).
func floats(s string, n int) []float64 {
	out := make([]float64, n)
	for i, f := range strings.Fields(s) {
		if i < n {
			out[i], _ = strconv.ParseFloat(f, 64)
		}
	}
	return out
}

// netBytes is /proc/net/dev summed: loopback apart (SRS's "intranet"
// counters; SRS also counts private addresses there, Fanout does not
// look up interface addresses).
type netBytes struct{ recv, send, recvLo, sendLo uint64 }

func netDev(s string) netBytes {
	var n netBytes
	for line := range strings.SplitSeq(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) < 9 {
			continue
		}
		rx, _ := strconv.ParseUint(f[0], 10, 64)
		tx, _ := strconv.ParseUint(f[8], 10, 64)
		if strings.TrimSpace(name) == "lo" {
			n.recvLo, n.sendLo = n.recvLo+rx, n.sendLo+tx
		} else {
			n.recv, n.send = n.recv+rx, n.send+tx
		}
	}
	return n
}

// sockets is /proc/net/sockstat, as SRS reads it.
type sockets struct{ tcpAlloc, tcpInuse, tcpTW, udpInuse uint64 }

func sockStat(s string) sockets {
	var k sockets
	for line := range strings.SplitSeq(s, "\n") {
		proto, rest, _ := strings.Cut(line, ":")
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseUint(f[i+1], 10, 64)
			switch proto + "." + f[i] {
			case "TCP.alloc":
				k.tcpAlloc = v
			case "TCP.inuse":
				k.tcpInuse = v
			case "TCP.tw":
				k.tcpTW = v
			case "UDP.inuse":
				k.udpInuse = v
			}
		}
	}
	return k
}

// selfStatNames are /proc/self/stat's fields from ppid on (proc(5)), named
// as SRS's /api/v1/self_proc_stats names them.
var selfStatNames = []string{"ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt",
	"majflt", "cmajflt", "utime", "stime", "cutime", "cstime", "priority", "nice", "num_threads",
	"itrealvalue", "starttime", "vsize", "rss", "rsslim", "startcode", "endcode", "startstack", "kstkesp",
	"kstkeip", "signal", "blocked", "sigignore", "sigcatch", "wchan", "nswap", "cnswap", "exit_signal",
	"processor", "rt_priority", "policy", "delayacct_blkio_ticks", "guest_time", "cguest_time"}

// selfStat parses /proc/self/stat: "pid (comm) state ppid …".
func selfStat(s string) (map[string]any, bool) {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return map[string]any{}, false
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
	rest := strings.Fields(s[closing+1:])
	out := map[string]any{"pid": pid, "comm": s[open+1 : closing]}
	if len(rest) > 0 {
		out["state"] = rest[0]
	}
	for i, name := range selfStatNames {
		if i+1 < len(rest) {
			out[name], _ = strconv.ParseInt(rest[i+1], 10, 64)
		}
	}
	return out, len(rest) > len(selfStatNames)
}

func (a *API) apiSelfProcStats(*http.Request, string) (map[string]any, error) {
	s, _ := readProc("self/stat")
	data, ok := selfStat(s)
	data["ok"], data["sample_time"], data["percent"] = ok, time.Now().UnixMilli(), 0
	return map[string]any{"data": data}, nil
}

func (a *API) apiSystemProcStats(*http.Request, string) (map[string]any, error) {
	s, ok := readProc("stat")
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	data := map[string]any{"ok": ok, "sample_time": time.Now().UnixMilli(), "percent": 0}
	for i, name := range []string{"user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal", "guest"} {
		var v uint64
		if i+1 < len(f) {
			v, _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		data[name] = v
	}
	return map[string]any{"data": data}, nil
}

func (a *API) apiMeminfos(*http.Request, string) (map[string]any, error) {
	s, ok := readProc("meminfo")
	m := memInfo(s)
	return map[string]any{"data": map[string]any{
		"ok": ok, "sample_time": time.Now().UnixMilli(), "percent_ram": m.ramPercent(), "percent_swap": m.swapPercent(),
		"MemActive": m.total - min(m.free, m.total), "RealInUse": m.realInUse(), "NotInUse": m.total - m.realInUse(),
		"MemTotal": m.total, "MemFree": m.free, "Buffers": m.buffers, "Cached": m.cached,
		"SwapTotal": m.swapTotal, "SwapFree": m.swapFree,
	}}, nil
}

func (a *API) apiRusages(*http.Request, string) (map[string]any, error) {
	data := getRusage().fields
	data["ok"], data["sample_time"] = len(data) > 0, time.Now().UnixMilli()
	return map[string]any{"data": data}, nil
}

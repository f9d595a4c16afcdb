package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is the part of /proc/PID/stat (proc(5)) the bench accounts.
type procStat struct {
	utime, stime uint64 // clock ticks
	threads      int
	rssPages     int64
}

// cpuMicros returns user+system CPU time in microseconds.
func (p procStat) cpuMicros() uint64 { return (p.utime + p.stime) * 1e6 / clockTicks }

// parseProcStat parses the contents of /proc/PID/stat. The command name
// may contain spaces and parentheses, so fields are counted after the last
// ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, ErrBadStat
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, num_threads 20, rss 24.
	if len(f) < 22 {
		return procStat{}, ErrBadStat
	}
	var ps procStat
	var err error
	if ps.utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%w: utime: %w", ErrBadStat, err)
	}
	if ps.stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%w: stime: %w", ErrBadStat, err)
	}
	if ps.threads, err = strconv.Atoi(f[17]); err != nil {
		return procStat{}, fmt.Errorf("%w: num_threads: %w", ErrBadStat, err)
	}
	if ps.rssPages, err = strconv.ParseInt(f[21], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%w: rss: %w", ErrBadStat, err)
	}
	return ps, nil
}

// readProcStat reads /proc/PID/stat, or /proc/self/task/TID/stat when tid > 0
// and pid is 0.
func readProcStat(pid, tid int) (procStat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	if pid == 0 {
		path = fmt.Sprintf("/proc/self/task/%d/stat", tid)
		if tid == 0 {
			path = "/proc/self/stat"
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: %w", err)
	}
	return parseProcStat(b)
}

// setAffinity pins tid (0 = the calling thread) to cpus.
func setAffinity(tid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(tid, &set); err != nil {
		return fmt.Errorf("sched_setaffinity %d: %w", tid, err)
	}
	return nil
}

// pinProcess pins every thread of pid (0 = this process) to cpus. Threads
// created later inherit the mask of their creator.
func pinProcess(pid int, cpus []int) error {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(filepath.Base(e.Name()))
		if err != nil {
			continue
		}
		if err := setAffinity(tid, cpus); err != nil {
			return err
		}
	}
	return nil
}

// ParseCPUList parses "0,2-3" into CPU numbers.
func ParseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%w: cpu list %q", ErrConfig, s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%w: cpu list %q", ErrConfig, s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// threadCPUMicros reads the CPU time of thread tid of this process through
// its CPU-time clock (clock_gettime with MAKE_THREAD_CPUCLOCK(tid,
// CPUCLOCK_SCHED), see clock_getcpuclockid(3)): nanosecond precision where
// /proc's clock ticks are 10 ms.
func threadCPUMicros(tid int) (uint64, error) {
	var ts unix.Timespec
	clk := int32(^tid)<<3 | 6
	if err := unix.ClockGettime(clk, &ts); err != nil {
		return 0, fmt.Errorf("thread cpu clock: %w", err)
	}
	return uint64(ts.Nano()) / 1000, nil
}

// processCPUMicros reads a process's CPU time (MAKE_PROCESS_CPUCLOCK) with
// nanosecond precision, falling back to /proc/PID/stat.
func processCPUMicros(pid int) (uint64, error) {
	var ts unix.Timespec
	clk := int32(^pid)<<3 | 2
	if err := unix.ClockGettime(clk, &ts); err == nil {
		return uint64(ts.Nano()) / 1000, nil
	}
	ps, err := readProcStat(pid, 0)
	if err != nil {
		return 0, err
	}
	return ps.cpuMicros(), nil
}

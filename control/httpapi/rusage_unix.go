//go:build unix

package httpapi

import (
	"runtime"
	"syscall"
	"time"
)

// rusage is getrusage(RUSAGE_SELF) for summaries and /api/v1/rusages.
type rusage struct {
	cpu      time.Duration
	maxRSSKB int64
	fields   map[string]any
}

func getRusage() rusage {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return rusage{fields: map[string]any{}}
	}
	maxRSS := int64(r.Maxrss)
	if runtime.GOOS == "darwin" {
		maxRSS /= 1024 // bytes there, kilobytes on Linux
	}
	return rusage{
		cpu:      time.Duration(r.Utime.Nano() + r.Stime.Nano()),
		maxRSSKB: maxRSS,
		fields: map[string]any{
			"ru_utime": r.Utime.Sec, "ru_stime": r.Stime.Sec, "ru_maxrss": r.Maxrss, "ru_ixrss": r.Ixrss,
			"ru_idrss": r.Idrss, "ru_isrss": r.Isrss, "ru_minflt": r.Minflt, "ru_majflt": r.Majflt,
			"ru_nswap": r.Nswap, "ru_inblock": r.Inblock, "ru_oublock": r.Oublock, "ru_msgsnd": r.Msgsnd,
			"ru_msgrcv": r.Msgrcv, "ru_nsignals": r.Nsignals, "ru_nvcsw": r.Nvcsw, "ru_nivcsw": r.Nivcsw,
		},
	}
}

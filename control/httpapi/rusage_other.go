//go:build !unix

package httpapi

import "time"

// rusage is empty where getrusage does not exist.
type rusage struct {
	cpu      time.Duration
	maxRSSKB int64
	fields   map[string]any
}

func getRusage() rusage { return rusage{fields: map[string]any{}} }

package bench

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// parseProm parses Prometheus text exposition format into series → value
// (the series key is the metric name with its label set, as written).
func parseProm(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		sep := strings.LastIndexByte(line, '}')
		var key, rest string
		if sep >= 0 {
			key, rest = line[:sep+1], strings.TrimSpace(line[sep+1:])
		} else {
			var ok bool
			key, rest, ok = strings.Cut(line, " ")
			if !ok {
				continue
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[key] = v
	}
	return out
}

// scrapeMetrics fetches a Prometheus endpoint; nil on any error.
func scrapeMetrics(ctx context.Context, u string) map[string]float64 {
	if u == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return parseProm(resp.Body)
}

// metricsDelta returns after - before for series that changed, and the
// after value for series that are new (gauges such as sessions).
func metricsDelta(before, after map[string]float64) map[string]float64 {
	if after == nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range after {
		if b, ok := before[k]; ok {
			if v != b {
				out[k] = v - b
			}
			continue
		}
		out[k] = v
	}
	return out
}

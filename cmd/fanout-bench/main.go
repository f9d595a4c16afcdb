// Command fanout-bench measures a WHIP/WHEP server by URL: it publishes a
// stream, plays it with many lightweight subscribers and reports loss,
// latency, connect times and CPU per packet (its own, the server's and the
// bare GCM + sendmmsg floor's). It can also serve the pion reference relay.
// The code lives in package bench; this file is wiring only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fanout/fanout/bench"
	"github.com/fanout/fanout/bench/pionrelay"
)

type options struct {
	cfg        bench.Config
	jsonOut    bool
	plot       string
	report     string
	serveRelay string
	relayUDP   string
	selfRelay  bool
	ffmpeg     bool
	steps      string
	serverCPUs string
	wheps      string
	serverPIDs string
	benchCPUs  string
	local      string
	candidate  string
	verbose    bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("fanout-bench", flag.ContinueOnError)
	fs.StringVar(&c.WHIP, "whip", "", "WHIP endpoint URL of the server under test")
	fs.StringVar(&o.wheps, "whep", "", "WHEP endpoint URL of the server under test; several nodes: URL,URL,… "+
		"(subscribers round-robin over them, figures per node)")
	fs.StringVar(&c.Token, "token", "", "Bearer token for WHIP/WHEP")
	fs.StringVar(&c.Mode, "mode", "fixed", "fixed | ramp | sweep | floor")
	fs.IntVar(&c.Subs, "subs", 100, "subscribers (fixed and floor modes)")
	fs.StringVar(&o.steps, "steps", "100,500,1000,2000", "subscriber counts for -mode sweep")
	fs.IntVar(&c.RampStart, "ramp-start", 100, "ramp: first subscriber count")
	fs.IntVar(&c.RampStep, "ramp-step", 100, "ramp: subscribers added per step")
	fs.IntVar(&c.RampMax, "ramp-max", 10000, "ramp: give up after this many")
	fs.Float64Var(&c.LossThreshold, "loss-threshold", 0.01, "ramp: stop when loss_ratio exceeds this")
	fs.IntVar(&c.Bitrate, "bitrate", 1_000_000, "publisher bitrate in bits per second")
	fs.IntVar(&c.PktSize, "pkt-size", 1200, "synthetic video RTP payload size in bytes")
	fs.DurationVar(&c.Dur, "dur", 10*time.Second, "measured window per step")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "max wait for first keyframes before measuring")
	fs.StringVar(&o.serverPIDs, "server-pid", "", "server process to account (CPU, RSS, threads); several nodes: "+
		"PID,PID,… in -whep's order, then nodes without players (e.g. an origin)")
	fs.StringVar(&c.MetricsURL, "metrics", "", "Prometheus /metrics URL of the server (Fanout), diffed over the window")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "pin the server (and the floor sender) to these CPUs, e.g. 0")
	fs.StringVar(&o.benchCPUs, "bench-cpus", "", "pin the bench to these CPUs, e.g. 1")
	fs.IntVar(&c.Readers, "readers", 1, "receive loops (bench threads) for subscribers")
	fs.IntVar(&c.VerifyEvery, "verify-every", 16, "authenticate and decrypt one SRTP packet in N")
	fs.BoolVar(&c.NACK, "nack", false, "send generic NACKs on sequence gaps (default: none, so loss is visible)")
	fs.BoolVar(&c.Floor, "floor", false, "also run the GCM+sendmmsg floor after each step, for ratios")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "subscribers connecting at once")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 15*time.Second, "per-subscriber connect timeout")
	fs.StringVar(&o.local, "local", "127.0.0.1", "local address for subscriber sockets")
	fs.StringVar(&o.candidate, "candidate", "", "override the server's ICE candidate (ip:port)")
	fs.BoolVar(&c.NoPublisher, "no-publish", false, "do not publish; play a stream someone else publishes")
	fs.StringVar(&c.H264File, "h264", "", "publish this Annex-B H.264 file (with -ogg) instead of the synthetic source")
	fs.StringVar(&c.OggFile, "ogg", "", "Ogg/Opus file published with -h264")
	fs.BoolVar(&o.ffmpeg, "ffmpeg", false, "generate -h264/-ogg files with ffmpeg at -bitrate and publish them")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.plot, "plot", "", "write CPU and loss against subscribers to this PNG (ramp/sweep)")
	fs.StringVar(&o.report, "report", "", "write a Markdown+JSON report with machine facts into this directory")
	fs.StringVar(&o.serveRelay, "serve-pionrelay", "", "serve the pion reference relay on this HTTP address and exit on signal")
	fs.StringVar(&o.relayUDP, "relay-udp", "127.0.0.1:0", "media UDP address of -serve-pionrelay")
	fs.BoolVar(&o.selfRelay, "self-relay", false, "start a pion relay child process and measure it (no -whip/-whep needed)")
	fs.DurationVar(&c.RxPoll, "rx-poll", 0, "receive by polling: epoll_wait(0) and sleep this long after an empty round, "+
		"so the server's sends wake no bench thread (0 = block in epoll_wait; e.g. 500us)")
	fs.BoolVar(&c.Sink, "sink", false, "capacity mode: once connected and past its first keyframe, count and drop each "+
		"subscriber's media in an eBPF socket filter (needs CAP_BPF); latency not measured")
	fs.BoolVar(&o.verbose, "v", false, "progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, o.finish()
}

// finish converts the string flags.
func (o *options) finish() error {
	c := &o.cfg
	var err error
	if c.ServerCPUs, err = bench.ParseCPUList(o.serverCPUs); err != nil {
		return err
	}
	if c.BenchCPUs, err = bench.ParseCPUList(o.benchCPUs); err != nil {
		return err
	}
	if c.Local, err = netip.ParseAddr(o.local); err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	if o.candidate != "" {
		if c.Candidate, err = netip.ParseAddrPort(o.candidate); err != nil {
			return fmt.Errorf("-candidate: %w", err)
		}
	}
	if c.WHEPs, err = parseList(o.wheps, "-whep", func(s string) (string, error) { return s, nil }); err != nil {
		return err
	}
	if c.ServerPIDs, err = parseList(o.serverPIDs, "-server-pid", positive); err != nil {
		return err
	}
	if len(c.WHEPs) > 0 {
		c.WHEP = c.WHEPs[0]
	}
	if len(c.ServerPIDs) > 0 {
		c.ServerPID = c.ServerPIDs[0]
	}
	for s := range strings.SplitSeq(o.steps, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("-steps: bad count %q", s)
		}
		c.Steps = append(c.Steps, n)
	}
	if o.verbose {
		c.Log = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "fanout-bench: "+f+"\n", a...) }
	}
	if o.ffmpeg && c.Sink {
		return fmt.Errorf("%w: -sink needs the synthetic publisher, whose packet count is exact: not with -ffmpeg", bench.ErrConfig)
	}
	return c.Validate()
}

// parseList splits a comma-separated flag value and parses each item.
func parseList[T any](v, name string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		x, err := parse(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", name, s, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// positive parses a process id.
func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err == nil && n <= 0 {
		err = bench.ErrConfig
	}
	return n, err
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.serveRelay != "" {
		err = serveRelay(ctx, o.serveRelay, o.relayUDP)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout-bench:", err)
		stop()
		os.Exit(1) //nolint:gocritic // stop() ran just above
	}
}

// serveRelay runs the pion relay until ctx ends; its first stdout line is
// "pionrelay URL" so a parent process can find it.
func serveRelay(ctx context.Context, httpAddr, udpAddr string) error {
	r, err := pionrelay.Start(httpAddr, udpAddr)
	if err != nil {
		return err
	}
	fmt.Printf("pionrelay %s udp %s\n", r.URL(), r.UDPAddr())
	fmt.Printf("  WHIP %s/whip\n  WHEP %s/whep\n", r.URL(), r.URL())
	<-ctx.Done()
	return r.Close()
}

func run(ctx context.Context, o *options) error {
	if o.selfRelay {
		child, url, err := startRelayChild(ctx)
		if err != nil {
			return err
		}
		defer func() {
			_ = child.Process.Signal(syscall.SIGTERM)
			_ = child.Wait()
		}()
		o.cfg.WHIP, o.cfg.WHEP, o.cfg.ServerPID = url+"/whip", url+"/whep", child.Process.Pid
		o.cfg.WHEPs, o.cfg.ServerPIDs = nil, nil
	}
	if o.ffmpeg {
		dir, err := os.MkdirTemp("", "fanout-bench-media")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.cfg.H264File, o.cfg.OggFile, err = bench.GenerateMedia(ctx, dir, o.cfg.Bitrate); err != nil {
			return err
		}
	}
	rep, err := bench.Run(ctx, o.cfg)
	if rep == nil {
		return err
	}
	rep.Command = "fanout-bench " + strings.Join(os.Args[1:], " ")
	rep.Machine = bench.MachineFacts()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	return output(o, rep)
}

func output(o *options, rep *bench.Report) error {
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteTable(os.Stdout)
	}
	if o.plot != "" {
		steps := rep.Steps
		if len(steps) == 0 {
			steps = []bench.Result{rep.Result}
		}
		if err := bench.WritePlot(o.plot, steps); err != nil {
			return err
		}
	}
	if o.report != "" {
		path, err := bench.WriteReport(o.report, rep)
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "fanout-bench: report", path)
	}
	return nil
}

// startRelayChild runs this binary with -serve-pionrelay on loopback and
// returns it with its base URL.
func startRelayChild(ctx context.Context) (*exec.Cmd, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, "-serve-pionrelay", "127.0.0.1:0", "-relay-udp", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 2 || f[0] != "pionrelay" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("pion relay child: %q: %v", line, err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()
	_ = ctx
	return cmd, f[1], nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Command fanout is the Fanout media server. It only wires packages
// together: it loads the configuration (conf), starts the fastpath on the
// WebRTC port, the control plane on the HTTP API port, prints the publish and
// play URLs, and drains on SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fanout/fanout/conf"
)

func main() {
	cfgPath := flag.String("c", "", "config file (SRS syntax); empty runs the embedded default")
	envOnly := flag.Bool("e", false, "ignore the config file; configure from SRS_* environment variables only")
	testCfg := flag.Bool("t", false, "test the config file and exit")
	flag.Parse()

	warn := func(msg string) { fmt.Fprintln(os.Stderr, "fanout: config:", msg) }
	cfg, err := loadConfig(*cfgPath, *envOnly, warn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(2)
	}
	if *testCfg {
		fmt.Println("fanout: config ok")
		return
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := start(cfg, log, Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	srv.PrintURLs(os.Stdout)
	<-ctx.Done()
	log.Info("shutting down")
	srv.Close()
}

func loadConfig(path string, envOnly bool, warn func(string)) (*conf.Config, error) {
	opts := conf.Options{Warn: warn}
	if envOnly {
		opts.Env = append(os.Environ(), "SRS_ENV_ONLY=on")
	}
	if path == "" {
		path = os.Getenv("SRS_CONFIG_FILE")
	}
	if path == "" {
		return conf.Default(opts)
	}
	return conf.Load(path, opts)
}

func newLogger(cfg *conf.Config) *slog.Logger {
	level := slog.LevelInfo
	switch cfg.LogLevel {
	case "verbose", "info":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	out := os.Stderr
	if cfg.LogTank == "file" && cfg.LogFile != "" {
		if f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			out = f
		}
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
}

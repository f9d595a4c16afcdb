// Command fanout is the Fanout media server: flags, the configuration
// (conf), start (cmd/internal/node assembles the parts), signals and drain.
// It prints the publish and play URLs, re-reads the config on SIGHUP and
// drains on SIGINT/SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fanout/fanout/cmd/internal/node"
	"github.com/fanout/fanout/conf"
)

func main() {
	cfgPath := flag.String("c", "", "config file (SRS syntax); empty runs the embedded default")
	envOnly := flag.Bool("e", false, "ignore the config file; configure from SRS_* environment variables only")
	testCfg := flag.Bool("t", false, "test the config file and exit")
	logFormat := flag.String("log-format", envOr("FANOUT_LOG_FORMAT", "text"), "log format: text or json (env FANOUT_LOG_FORMAT)")
	drain := flag.Duration("drain", 30*time.Second, "on SIGTERM/SIGINT, how long live sessions may take to finish")
	pprofAddr := flag.String("pprof", os.Getenv("FANOUT_PPROF"), "serve Go's /debug/pprof on this address, e.g. 127.0.0.1:6060 (env FANOUT_PPROF); off when empty")
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
	log := newLogger(cfg, *logFormat)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	srv, err := node.Start(cfg, log, node.Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	srv.PrintURLs(os.Stdout)
	if *pprofAddr != "" {
		go func() {
			log.Info("pprof listening", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				log.Error("pprof stopped", "err", err)
			}
		}()
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			next, err := loadConfig(*cfgPath, *envOnly, warn)
			if err != nil {
				log.Error("reload refused: config has errors", "err", err)
				continue
			}
			log.Info("config reloaded: vhost options apply to new sessions", "needs_restart", fmt.Sprint(srv.Reload(next)))
			continue
		}
		log.Info("draining: new sessions get 503", "signal", sig.String(), "timeout", *drain)
		left := srv.Drain(*drain)
		log.Info("stopped", "sessions_cut", left)
		return
	}
}

// loadConfig is conf.Load: path, else $SRS_CONFIG_FILE, else the embedded
// default; -e reads the environment only.
func loadConfig(path string, envOnly bool, warn func(string)) (*conf.Config, error) {
	opts := conf.Options{Warn: warn}
	if envOnly {
		opts.Env = append(os.Environ(), "SRS_ENV_ONLY=on")
	}
	return conf.Load(path, opts)
}

func newLogger(cfg *conf.Config, format string) *slog.Logger {
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
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

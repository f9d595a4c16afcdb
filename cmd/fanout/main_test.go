package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets a test run this binary as the fanout command.
func TestMain(m *testing.M) {
	if os.Getenv("FANOUT_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCheckShippedConfigs: `fanout -t -c FILE` accepts every shipped config.
func TestCheckShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../conf/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-t", "-c", f)
			cmd.Env = append(os.Environ(), "FANOUT_RUN_MAIN=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "fanout: config ok") {
				t.Fatalf("fanout -t -c %s: %v\n%s", f, err, out)
			}
		})
	}
}

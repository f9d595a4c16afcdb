package conf

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShippedFiles loads every conf/*.conf as shipped, with an empty
// environment, and wants no warning at all: `fanout -t -c conf/X.conf` must
// print nothing but "config ok" for each of them.
func TestShippedFiles(t *testing.T) {
	files, err := filepath.Glob("*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default.conf", "rtc.conf", "rtmp2rtc.conf", "rtc2rtmp.conf",
		"rtc.tcp.only.conf", "rtc.tcp.udp.conf"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is not shipped (found %q)", want, files)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			var warns []string
			c, err := Load(f, Options{Env: []string{}, Warn: func(m string) { warns = append(warns, m) }})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warns {
				t.Errorf("warning: %s", w)
			}
			checkShipped(t, f, c)
		})
	}
}

// checkShipped pins what each file is for.
func checkShipped(t *testing.T, f string, c *Config) {
	t.Helper()
	r := c.Vhost(DefaultVhost).RTC
	common := c.RTCServer.Enabled && r.Enabled && c.HTTPAPI.Enabled && c.HTTPAPI.Listen == AnyPort(1985) &&
		c.HTTPServer.Enabled && c.HTTPServer.Listen == AnyPort(8080) && !c.Daemon &&
		slices.Equal(c.Listen, []netip.AddrPort{AnyPort(1935)}) && slices.Equal(c.RTCServer.Listen, []netip.AddrPort{AnyPort(8000)}) &&
		slices.Equal(c.RTCServer.Candidates, []string{"*"})
	if !common {
		t.Errorf("common settings: %+v", c)
	}
	proto := map[string]string{"rtc.tcp.only.conf": "tcp", "rtc.tcp.udp.conf": "all"}[f]
	if proto == "" {
		proto = "udp"
	}
	if c.RTCServer.Protocol != proto || c.RTCServer.TCP.Enabled != (proto != "udp") {
		t.Errorf("protocol %q tcp %+v", c.RTCServer.Protocol, c.RTCServer.TCP)
	}
	if r.RTMPToRTC != (f == "rtmp2rtc.conf") || r.RTCToRTMP != (f == "rtc2rtmp.conf") {
		t.Errorf("bridges rtmp_to_rtc=%v rtc_to_rtmp=%v", r.RTMPToRTC, r.RTCToRTMP)
	}
	if f == "rtc2rtmp.conf" && r.PLIForRTMP != 6*time.Second {
		t.Errorf("pli_for_rtmp %v", r.PLIForRTMP)
	}
	if !c.Vhost(DefaultVhost).HTTPRemux.Enabled {
		t.Error("http_remux off")
	}
}

func TestShippedCandidateFromEnv(t *testing.T) {
	c, err := Load("rtc.conf", Options{Env: []string{"CANDIDATE=192.168.3.10"}})
	if err != nil || !slices.Equal(c.RTCServer.Candidates, []string{"192.168.3.10"}) {
		t.Fatalf("candidate %v, err %v", c.RTCServer.Candidates, err)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// includeTree writes a tree of config files that include each other.
func includeTree(t *testing.T) string {
	t.Helper()
	return writeFiles(t, map[string]string{
		"main.conf":        "listen 1935;\ninclude inc/server.conf;\nvhost v {\n  include inc/vhost.conf;\n}\ninclude inc/glob/*.conf;\n",
		"inc/server.conf":  "rtc_server {\n  enabled on;\n  listen 9000;\n}\n",
		"inc/vhost.conf":   "rtc {\n  enabled on;\n  nack off;\n}\n",
		"inc/glob/a.conf":  "http_api { enabled on; }\n",
		"inc/glob/b.conf":  "http_server { enabled on; }\n",
		"bad/main.conf":    "include ../bad/inc.conf;\n",
		"bad/inc.conf":     "daemon off;\n\nlisten abc;\n",
		"loop/a.conf":      "include b.conf;\n",
		"loop/b.conf":      "include a.conf;\n",
		"missing/a.conf":   "daemon off;\ninclude nope.conf;\n",
		"unknown/a.conf":   "include b.conf;\nfoo on;\n",
		"unknown/b.conf":   "\nfoo off;\n",
		"glob0/main.conf":  "include none/*.conf;\n",
		"cwd/main.conf":    "include cwd/inc.conf;\n", // resolved from the working directory, as in SRS
		"cwd/inc.conf":     "daemon off;\n",
		"cwd/cwd/inc.conf": "daemon on;\n",
	})
}

func TestInclude(t *testing.T) {
	dir := includeTree(t)
	c, err := Load(filepath.Join(dir, "main.conf"), Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.RTCServer.Enabled || c.RTCServer.Listen[0] != AnyPort(9000) || !c.Vhosts["v"].RTC.Enabled ||
		c.Vhosts["v"].RTC.NACK || !c.HTTPAPI.Enabled || !c.HTTPServer.Enabled {
		t.Errorf("includes not spliced: %+v %+v", c.RTCServer, c.Vhosts["v"].RTC)
	}
	t.Run("working directory first", func(t *testing.T) {
		t.Chdir(dir)
		c, err := Load("cwd/main.conf", Options{Env: []string{}})
		if err != nil || c.Daemon {
			t.Errorf("err %v daemon %v: want cwd/inc.conf (daemon off)", err, c != nil && c.Daemon)
		}
	})
}

func TestIncludeErrors(t *testing.T) {
	dir := includeTree(t)
	errTests := []struct {
		file, want string
		sentinel   error
	}{
		{"bad/main.conf", filepath.Join(dir, "bad/inc.conf") + ":3: listen", ErrValue},
		{"loop/a.conf", "includes itself", ErrInclude},
		{"missing/a.conf", filepath.Join(dir, "missing/a.conf") + ":2: include", ErrInclude},
	}
	for _, tc := range errTests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(filepath.Join(dir, tc.file), Options{Env: []string{}})
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q (%v)", err, tc.want, tc.sentinel)
			}
		})
	}
	t.Run("warn once across files", func(t *testing.T) {
		var warns []string
		_, err := Load(filepath.Join(dir, "unknown/a.conf"), Options{Env: []string{}, Warn: func(m string) { warns = append(warns, m) }})
		if err != nil || len(warns) != 1 || !strings.Contains(warns[0], "unknown/b.conf:2:") {
			t.Errorf("err %v warns %q", err, warns)
		}
	})
	t.Run("empty glob", func(t *testing.T) {
		if _, err := Load(filepath.Join(dir, "glob0/main.conf"), Options{Env: []string{}}); err != nil {
			t.Error(err)
		}
	})
}

func TestReadFileHook(t *testing.T) {
	read := func(name string) ([]byte, error) {
		if name == "x.conf" {
			return []byte("rtc_server { enabled on; }"), nil
		}
		return nil, fs.ErrNotExist
	}
	c, err := Parse("main.conf", []byte("include x.conf;"), Options{Env: []string{}, ReadFile: read})
	if err != nil || !c.RTCServer.Enabled {
		t.Fatalf("%v %+v", err, c)
	}
}

// TestNoGoroutineLeak: crossplane lexes in a goroutine; every path through
// Parse, including early errors, must drain it.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	long := strings.Repeat("max_connections 1;\n", 5000)
	inputs := []string{
		"daemon maybe;\n" + long,
		"vhost v { rtc { enabled on } }\n" + long,
		"{ }\n" + long,
		long + "}",
		long + "rtc_server {",
		"include missing.conf;\n" + long,
		"daemon off;\n" + long,
	}
	for _, in := range inputs {
		_, _ = Parse("leak.conf", []byte(in), Options{Env: []string{},
			ReadFile: func(string) ([]byte, error) { return nil, fs.ErrNotExist }})
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("goroutines: %d before, %d after", base, n)
	}
}

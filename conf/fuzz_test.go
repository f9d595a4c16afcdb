package conf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, every error
// must be an *Error wrapping one of the sentinels, and a successful parse
// must satisfy the Config invariants. Seeds: testdata/fuzz/FuzzParse (the
// shipped files) plus the shipped files read at run time.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("*.conf")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("vhost v { rtc { enabled on; nack maybe; } }"))
	f.Add([]byte("include a.conf; rtc_server { candidate $CANDIDATE ${X} 0.0.0.0; }"))
	opts := Options{
		Env:      []string{"CANDIDATE=10.0.0.1", "SRS_VHOST_RTC_NACK=off"},
		Warn:     func(string) {},
		ReadFile: func(string) ([]byte, error) { return nil, fs.ErrNotExist },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data, opts)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !(errors.Is(err, ErrSyntax) || errors.Is(err, ErrValue) ||
				errors.Is(err, ErrInclude) || errors.Is(err, ErrRead)) {
				t.Fatalf("error %v (%T) is not a located *Error with a sentinel", err, err)
			}
			return
		}
		if c.Vhosts[DefaultVhost] == nil || c.Vhost("nope") == nil {
			t.Fatal("no default vhost")
		}
		if len(c.Listen) == 0 || len(c.RTCServer.Listen) == 0 || len(c.RTCServer.Candidates) == 0 {
			t.Fatalf("empty list: %+v", c)
		}
		for name, v := range c.Vhosts {
			if v == nil || v.Name != name || v.RTC.NACK {
				t.Fatalf("vhost %q: %+v", name, v)
			}
		}
	})
}

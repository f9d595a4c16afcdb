package main

import (
	"testing"
	"time"
)

// TestFlagNames pins the flags other tools call the bench with.
func TestFlagNames(t *testing.T) {
	o, err := parseFlags([]string{"-whip", "http://h/whip", "-whep", "http://h/whep", "-subs", "500",
		"-bitrate", "2000000", "-dur", "7s", "-server-pid", "42", "-json", "-mode", "sweep",
		"-steps", "100,500", "-server-cpus", "0", "-bench-cpus", "1", "-floor", "-plot", "x.png", "-report", "dir"})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.WHIP != "http://h/whip" || c.WHEP != "http://h/whep" || c.Subs != 500 || c.Bitrate != 2_000_000 ||
		c.Dur != 7*time.Second || c.ServerPID != 42 || !o.jsonOut || len(c.Steps) != 2 ||
		len(c.ServerCPUs) != 1 || c.BenchCPUs[0] != 1 || !c.Floor || o.plot != "x.png" || o.report != "dir" {
		t.Fatalf("parsed %+v %+v", o, c)
	}
	if _, err := parseFlags([]string{"-steps", "10,x"}); err == nil {
		t.Fatal("bad -steps must fail")
	}
}

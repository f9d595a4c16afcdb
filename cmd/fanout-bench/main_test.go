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

// TestReceiveModeFlags checks -rx-poll and -sink parse, and that the
// combinations that cannot measure anything fail before a run starts.
func TestReceiveModeFlags(t *testing.T) {
	base := []string{"-whip", "http://h/whip", "-whep", "http://h/whep"}
	o, err := parseFlags(append(base, "-rx-poll", "500us", "-sink", "-mode", "ramp", "-loss-threshold", "0.005"))
	if err != nil {
		t.Fatal(err)
	}
	if c := o.cfg; c.RxPoll != 500*time.Microsecond || !c.Sink || c.LossThreshold != 0.005 {
		t.Fatalf("parsed rx-poll %v, sink %v, threshold %v", c.RxPoll, c.Sink, c.LossThreshold)
	}
	if o, err := parseFlags(base); err != nil || o.cfg.RxPoll != 0 || o.cfg.Sink {
		t.Fatalf("defaults: %v, rx-poll %v, sink %v", err, o.cfg.RxPoll, o.cfg.Sink)
	}
	bad := []struct {
		name string
		args []string
	}{
		{"negative rx-poll", []string{"-rx-poll", "-1ms"}},
		{"rx-poll too long", []string{"-rx-poll", "1s"}},
		{"rx-poll not a duration", []string{"-rx-poll", "500"}},
		{"sink without publisher", []string{"-sink", "-no-publish"}},
		{"sink with file publisher", []string{"-sink", "-h264", "a.h264", "-ogg", "a.ogg"}},
		{"sink with ffmpeg", []string{"-sink", "-ffmpeg"}},
		{"sink with nack", []string{"-sink", "-nack"}},
		{"unknown mode", []string{"-mode", "soak"}},
		{"threshold over 1", []string{"-loss-threshold", "1.5"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseFlags(append(append([]string{}, base...), c.args...)); err == nil {
				t.Fatalf("%v must fail", c.args)
			}
		})
	}
	// -sink with -mode floor needs no publisher: the floor counts its own sends.
	if _, err := parseFlags([]string{"-mode", "floor", "-sink", "-no-publish"}); err != nil {
		t.Fatal(err)
	}
}

// TestNodeListFlags: -whep and -server-pid take comma lists (several nodes
// of a cluster, subscribers round-robin over the URLs); one item each is
// the single-server form.
func TestNodeListFlags(t *testing.T) {
	o, err := parseFlags([]string{"-whip", "http://a/whip", "-whep", "http://a/whep, http://b/whep,http://c/whep",
		"-server-pid", "11,12,13,10"})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if len(c.WHEPs) != 3 || c.WHEPs[1] != "http://b/whep" || c.WHEP != "http://a/whep" ||
		len(c.ServerPIDs) != 4 || c.ServerPIDs[3] != 10 || c.ServerPID != 11 {
		t.Fatalf("whep %q %q, pids %v %d", c.WHEPs, c.WHEP, c.ServerPIDs, c.ServerPID)
	}
	for _, bad := range []string{"0", "x", "1,-2"} {
		if _, err := parseFlags([]string{"-whip", "w", "-whep", "h", "-server-pid", bad}); err == nil {
			t.Fatalf("-server-pid %s must fail", bad)
		}
	}
}

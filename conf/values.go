package conf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A parser turns a directive's arguments (already $VAR-resolved) into a
// value. Errors wrap ErrValue; errFallback means "use the returned default
// and warn".
type parser[T any] func(args []string) (T, error)

// target is what a setter writes to: the Config, or one Vhost.
type target struct {
	c *Config
	v *Vhost
}

type setter func(t target, args []string) error

// global binds a parser to a Config field.
func global[T any](field func(*Config) *T, parse parser[T]) setter {
	return func(t target, args []string) error {
		v, err := parse(args)
		if err != nil && !errors.Is(err, errFallback) {
			return err
		}
		*field(t.c) = v
		return err
	}
}

// vhost binds a parser to a Vhost field.
func vhost[T any](field func(*Vhost) *T, parse parser[T]) setter {
	return func(t target, args []string) error {
		v, err := parse(args)
		if err != nil && !errors.Is(err, errFallback) {
			return err
		}
		*field(t.v) = v
		return err
	}
}

func badValue(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrValue}, a...)...)
}

func one(args []string) (string, error) {
	if len(args) != 1 {
		return "", badValue("want 1 value, got %d", len(args))
	}
	return args[0], nil
}

// text is any single non-empty value (paths, names, passwords).
func text(args []string) (string, error) {
	s, err := one(args)
	if err == nil && s == "" {
		err = badValue("empty value")
	}
	return s, err
}

// flag accepts exactly `on` or `off`. SRS's prefer-true/prefer-false rules
// decide what anything else means; Fanout rejects anything else, so both
// rules hold and a typo is reported instead of silently flipping a switch.
func flag(args []string) (bool, error) {
	s, err := one(args)
	if err != nil {
		return false, err
	}
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, badValue("%q, want on or off", s)
}

func enum(values ...string) parser[string] {
	return func(args []string) (string, error) {
		s, err := one(args)
		if err != nil {
			return "", err
		}
		for _, v := range values {
			if s == v {
				return s, nil
			}
		}
		return "", badValue("%q, want one of %s", s, strings.Join(values, "|"))
	}
}

// ParseListen reads an SRS listen value into an address:
//
//	8000, :8000, [::]:8000  every address, IPv4 and IPv6 (the dual-stack wildcard [::])
//	0.0.0.0:8000            every IPv4 address only
//	127.0.0.1:8000, [::1]:8000, localhost:8000 (= 127.0.0.1)  one address
//
// Port 0 is accepted here (the kernel picks one; tests and command-line
// overrides use it); a config file's listen directives want 1–65535.
func ParseListen(s string) (netip.AddrPort, error) {
	host, port := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if h, ok := strings.CutPrefix(host, "["); ok {
			host, ok = strings.CutSuffix(h, "]")
			if !ok || !strings.Contains(host, ":") {
				return netip.AddrPort{}, badValue("%q, want port, ip:port or [ipv6]:port", s)
			}
		} else if strings.Contains(host, ":") {
			return netip.AddrPort{}, badValue("%q, want port, ip:port or [ipv6]:port (brackets around IPv6)", s)
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, badValue("%q, want a port 0-65535, ip:port or [ipv6]:port", s)
	}
	var ip netip.Addr
	switch host {
	case "":
		ip = netip.IPv6Unspecified()
	case "localhost":
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		if ip, err = netip.ParseAddr(host); err != nil || ip.Zone() != "" {
			return netip.AddrPort{}, badValue("%q, want port, ip:port or [ipv6]:port", s)
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), nil
}

// listenAddr is a listen directive's value: ParseListen, port 1–65535.
func listenAddr(s string) (netip.AddrPort, error) {
	a, err := ParseListen(s)
	if err == nil && a.Port() == 0 {
		err = badValue("%q, want a port 1-65535, ip:port or [ipv6]:port", s)
	}
	return a, err
}

func listenOne(args []string) (netip.AddrPort, error) {
	s, err := one(args)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return listenAddr(s)
}

func listenList(args []string) ([]netip.AddrPort, error) {
	if len(args) == 0 {
		return nil, badValue("want at least one port")
	}
	out := make([]netip.AddrPort, 0, len(args))
	for _, a := range args {
		ap, err := listenAddr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, nil
}

// AnyPort is a port-only listen value: every address, IPv4 and IPv6.
func AnyPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.IPv6Unspecified(), port) }

// candidates: unset $VARs were already dropped, so empty means "*";
// "0.0.0.0" means "*" too (SRS).
func candidates(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			return nil, badValue("candidate %q", a)
		}
		if a == "0.0.0.0" {
			a = "*"
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		out = append(out, "*")
	}
	return out, nil
}

// interfaces is fastpath.xdp: interface names, or off (nil).
func interfaces(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, badValue("no interface, want names or off")
	}
	if len(args) == 1 && args[0] == "off" {
		return nil, nil
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		// IFNAMSIZ is 16 with the NUL; a name has no slash or space.
		if a == "" || a == "off" || len(a) > 15 || strings.ContainsAny(a, "/ \t\r\n") {
			return nil, badValue("interface %q", a)
		}
		out = append(out, a)
	}
	return out, nil
}

func number(args []string) (float64, error) {
	s, err := one(args)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, badValue("%q is not a number", s)
	}
	return f, nil
}

func intIn(lo, hi int) parser[int] {
	return func(args []string) (int, error) {
		s, err := one(args)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, badValue("%q, want an integer %d-%d", s, lo, hi)
		}
		return n, nil
	}
}

// intOr is SRS's lenient range: a number outside lo–hi becomes def.
func intOr(lo, hi, def int) parser[int] {
	return func(args []string) (int, error) {
		f, err := number(args)
		if err != nil {
			return 0, err
		}
		if f < float64(lo) || f > float64(hi) {
			return def, fmt.Errorf("%w: %v not in %d-%d, using %d", errFallback, f, lo, hi, def)
		}
		return int(f), nil
	}
}

func positive(args []string) (float64, error) {
	f, err := number(args)
	if err == nil && f <= 0 {
		err = badValue("%v, want > 0", f)
	}
	return f, err
}

// seconds is a positive duration in (possibly fractional) seconds, at most max.
func seconds(max time.Duration) parser[time.Duration] {
	return func(args []string) (time.Duration, error) {
		f, err := positive(args)
		if err != nil {
			return 0, err
		}
		if f > max.Seconds() {
			return 0, badValue("%vs, want at most %v", f, max)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
}

// secondsIn is seconds from lo to hi.
func secondsIn(lo, hi time.Duration) parser[time.Duration] {
	return func(args []string) (time.Duration, error) {
		d, err := seconds(hi)(args)
		if err == nil && d < lo {
			return 0, badValue("%v, want at least %v", d, lo)
		}
		return d, err
	}
}

// secondsOr is SRS's lenient range for durations: outside lo–hi becomes def.
func secondsOr(lo, hi, def time.Duration) parser[time.Duration] {
	return func(args []string) (time.Duration, error) {
		f, err := number(args)
		if err != nil {
			return 0, err
		}
		if f < lo.Seconds() || f > hi.Seconds() {
			return def, fmt.Errorf("%w: %vs not in %v-%v, using %v", errFallback, f, lo, hi, def)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
}

// microseconds is fastpath.frame_wait: 0–10000 µs; 0 (off) is stored as
// a negative duration, the "off" of the fastpath's own setting.
func microseconds(args []string) (time.Duration, error) {
	n, err := intIn(0, 10000)(args)
	if err != nil || n == 0 {
		return -1, err
	}
	return time.Duration(n) * time.Microsecond, nil
}

// secondsOff: seconds up to max; 0 (off) becomes -1.
func secondsOff(max time.Duration) parser[time.Duration] {
	return func(args []string) (time.Duration, error) {
		f, err := number(args)
		if err != nil {
			return 0, err
		}
		if f < 0 || f > max.Seconds() {
			return 0, badValue("%vs, want 0 (off) to %v", f, max)
		}
		if f == 0 {
			return -1, nil
		}
		return time.Duration(f * float64(time.Second)), nil
	}
}

// intOff: an integer up to max; 0 (off) becomes -1.
func intOff(max int) parser[int] {
	return func(args []string) (int, error) {
		n, err := intIn(0, max)(args)
		if err != nil || n == 0 {
			return -1, err
		}
		return n, nil
	}
}

// cores: `auto` or 0 is one loop per CPU in the affinity mask.
func cores(args []string) (int, error) {
	if s, err := one(args); err == nil && s == "auto" {
		return 0, nil
	}
	return intIn(0, 4096)(args)
}

// logLevel accepts srs_log_level names (case-insensitive).
func logLevel(args []string) (string, error) {
	s, err := one(args)
	if err != nil {
		return "", err
	}
	s = strings.ToLower(s)
	switch s {
	case "verbose", "info", "trace", "warn", "error":
		return s, nil
	}
	return "", badValue("%q, want verbose|info|trace|warn|error", s)
}

// logLevelV2 maps srs_log_level_v2 (TRACE, DEBUG, INFO, WARN, ERROR) to the
// v1 names as SRS does: TRACE=verbose, DEBUG=info, INFO=trace.
func logLevelV2(args []string) (string, error) {
	s, err := one(args)
	if err != nil {
		return "", err
	}
	v1 := map[string]string{"trace": "verbose", "debug": "info", "info": "trace", "warn": "warn", "error": "error"}
	if l, ok := v1[strings.ToLower(s)]; ok {
		return l, nil
	}
	return "", badValue("%q, want trace|debug|info|warn|error", s)
}

// legacyAAC is the pre-4.0.174 `aac transcode;`, which SRS rewrites to
// `rtmp_to_rtc on;`.
func legacyAAC(args []string) (bool, error) {
	s, err := enum("transcode", "copy", "discard")(args)
	return s == "transcode", err
}

// legacyBframe is the old `bframe keep|discard;` = `keep_bframe on|off;`.
func legacyBframe(args []string) (bool, error) {
	s, err := enum("keep", "discard")(args)
	return s == "keep", err
}

// urls is a list of http(s) callback URLs.
func urls(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, badValue("want at least one URL")
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "http://") && !strings.HasPrefix(a, "https://") {
			return nil, badValue("%q is not an http(s) URL", a)
		}
	}
	return append([]string(nil), args...), nil
}

// redisURL is cluster.redis: redis:// or rediss:// (TLS) with a host.
// go-redis parses the rest (user, password, db) when the node connects.
func redisURL(args []string) (string, error) {
	s, err := one(args)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "", badValue("%q is not a redis://host:port/db or rediss:// URL", s)
	}
	return s, nil
}

// nodeID is cluster.node_id: it goes into Redis key names, so it keeps to
// [A-Za-z0-9._-].
func nodeID(args []string) (string, error) {
	s, err := one(args)
	if err != nil {
		return "", err
	}
	if len(s) > 64 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r))
	}) >= 0 {
		return "", badValue("node_id %q: want at most 64 of [A-Za-z0-9._-]", s)
	}
	return s, nil
}

// advertise is cluster.advertise: an http(s) base URL, or host:port
// (then http://host:port). No path: redirects append SRS's paths.
func advertise(args []string) (string, error) {
	s, err := one(args)
	if err != nil {
		return "", err
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", badValue("%q is not host:port or an http(s)://host:port base URL", args[0])
	}
	return strings.TrimSuffix(s, "/"), nil
}

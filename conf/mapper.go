package conf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// mapper walks parsed directives into a Config through the tables.
type mapper struct {
	c      *Config
	env    map[string]string
	opts   Options
	warned map[string]bool // unknown directive paths already reported
}

func newMapper(c *Config, env map[string]string, opts Options) *mapper {
	return &mapper{c: c, env: env, opts: opts, warned: map[string]bool{}}
}

// root maps the top level: `vhost` blocks and the root table.
func (m *mapper) root(dirs crossplane.Directives) error {
	vhosts := map[string]*crossplane.Directive{}
	return m.block(dirs, "", target{c: m.c}, rootTable, map[string]*crossplane.Directive{}, vhosts)
}

// block maps one block's directives. prefix is the block's dotted path
// ("" or "rtc_server." …); seen holds the first directive per path, because
// SRS reads the first of duplicated directives and ignores the rest.
func (m *mapper) block(dirs crossplane.Directives, prefix string, t target, tab *table,
	seen, vhosts map[string]*crossplane.Directive) error {
	for _, d := range dirs {
		path := prefix + d.Directive
		switch {
		case t.v == nil && path == "vhost":
			if err := m.vhost(d, vhosts); err != nil {
				return err
			}
		case tab.sections[path]:
			if !d.IsBlock() {
				return m.locErr(d, scoped(t, path), badValue("is a block, want %s { … }", d.Directive))
			}
			if m.duplicate(d, path, seen) {
				continue
			}
			if err := m.block(d.Block, path+".", t, tab, seen, vhosts); err != nil {
				return err
			}
		case tab.entries[path] != nil:
			if d.IsBlock() {
				return m.locErr(d, scoped(t, path), badValue("is not a block, want %s value;", d.Directive))
			}
			if m.duplicate(d, path, seen) {
				continue
			}
			if err := m.set(tab.entries[path], t, d.Args, d.File, d.Line, scoped(t, path)); err != nil {
				return err
			}
		default:
			m.unknown(d, t, path)
		}
	}
	return nil
}

// vhost maps `vhost name { … }`. A vhost starts from the SRS defaults.
func (m *mapper) vhost(d *crossplane.Directive, vhosts map[string]*crossplane.Directive) error {
	if len(d.Args) != 1 || d.Args[0] == "" || !d.IsBlock() {
		return m.locErr(d, "vhost", badValue("want vhost name { … }"))
	}
	name := d.Args[0]
	if first, ok := vhosts[name]; ok {
		m.opts.warn(fmt.Sprintf("%s: duplicate vhost %q ignored, the first at %s wins",
			pos(d), name, pos(first)))
		return nil
	}
	vhosts[name] = d
	v := newVhost(name)
	m.c.Vhosts[name] = v
	return m.block(d.Block, "", target{c: m.c, v: v}, vhostTable, map[string]*crossplane.Directive{}, nil)
}

// duplicate reports (and warns about) a directive already given in this block.
func (m *mapper) duplicate(d *crossplane.Directive, path string, seen map[string]*crossplane.Directive) bool {
	first, ok := seen[path]
	if !ok {
		seen[path] = d
		return false
	}
	m.opts.warn(fmt.Sprintf("%s: duplicate directive %q ignored, the first at %s wins", pos(d), d.Directive, pos(first)))
	return true
}

// unknown ignores a directive the tables do not map: silently when it is an
// SRS directive Fanout has no use for (srs.go), else with one warning per
// directive path (per scope), so that typos are seen.
func (m *mapper) unknown(d *crossplane.Directive, t target, path string) {
	if srsIgnored(t, path) {
		return
	}
	path = scoped(t, path)
	if m.warned[path] {
		return
	}
	m.warned[path] = true
	m.opts.warn(fmt.Sprintf("%s: unknown directive %q (%s) ignored", pos(d), d.Directive, path))
}

// set resolves $VARs in raw and applies e. A directive whose arguments were
// all unset variables keeps its default, except where e.empty says the
// setter handles that (candidate → "*").
func (m *mapper) set(e *entry, t target, raw []string, file string, line int, what string) error {
	args := m.resolve(raw)
	if len(raw) > 0 && len(args) == 0 && !e.empty {
		return nil
	}
	err := e.set(t, args)
	if errors.Is(err, errFallback) {
		m.opts.warn(fmt.Sprintf("%s: %s: %v", loc(file, line), what, err))
		return nil
	}
	if err != nil {
		return &Error{File: file, Line: line, Directive: what, Err: err}
	}
	return nil
}

func (m *mapper) locErr(d *crossplane.Directive, path string, err error) error {
	return &Error{File: d.File, Line: d.Line, Directive: path, Err: err}
}

// applyEnv applies SRS_* overrides after the file, so env wins. Vhost
// overrides apply to every vhost.
func (m *mapper) applyEnv() error {
	for _, e := range rootTable.list {
		if name, val := m.lookup(e.env); val != "" {
			if err := m.set(e, target{c: m.c}, strings.Fields(val), "env", 0, name); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(m.c.Vhosts))
	for n := range m.c.Vhosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, e := range vhostTable.list {
		name, val := m.lookup(e.env)
		if val == "" {
			continue
		}
		for _, n := range names {
			t := target{c: m.c, v: m.c.Vhosts[n]}
			if err := m.set(e, t, strings.Fields(val), "env", 0, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookup returns the first of names set to a non-blank value.
func (m *mapper) lookup(names []string) (string, string) {
	for _, n := range names {
		if v := strings.TrimSpace(m.env[n]); v != "" {
			return n, v
		}
	}
	return "", ""
}

// resolve replaces whole-argument $NAME / ${NAME} by the environment value;
// an unset or empty variable drops the argument (SRS: `candidate $CANDIDATE;`
// with CANDIDATE unset means `*`).
func (m *mapper) resolve(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		name, ok := varName(a)
		if !ok {
			out = append(out, a)
			continue
		}
		if v := m.env[name]; v != "" {
			out = append(out, v)
		}
	}
	return out
}

func varName(s string) (string, bool) {
	if !strings.HasPrefix(s, "$") {
		return "", false
	}
	name := s[1:]
	if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") {
		name = name[1 : len(name)-1]
	}
	if name == "" {
		return "", false
	}
	for i, r := range name {
		letter := r == '_' || (r|0x20 >= 'a' && r|0x20 <= 'z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return "", false
		}
	}
	return name, true
}

func envMap(kv []string) map[string]string {
	if kv == nil {
		kv = os.Environ()
	}
	env := make(map[string]string, len(kv))
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

func envOn(env map[string]string, key string) bool {
	return strings.TrimSpace(env[key]) == "on"
}

// scoped names a path for messages: vhost directives get a "vhost." prefix.
func scoped(t target, path string) string {
	if t.v != nil {
		return "vhost." + path
	}
	return path
}

func pos(d *crossplane.Directive) string { return loc(d.File, d.Line) }

func loc(file string, line int) string {
	if line <= 0 {
		return file
	}
	return file + ":" + strconv.Itoa(line)
}

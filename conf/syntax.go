package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// maxIncludeDepth bounds nested includes; SRS has no limit, but a config
// nested this deep is a mistake, and the bound keeps a loop through
// different spellings of one path finite.
const maxIncludeDepth = 16

// syntax turns one file into directives with includes spliced in place.
func (m *mapper) syntax(name string, data []byte) (crossplane.Directives, error) {
	return m.parseFile(name, data, nil)
}

// parseFile runs crossplane on data. Crossplane knows nginx's directives, not
// SRS's, so its context and argument checks are off and every directive is
// accepted; it does only the lexing and the block structure. SingleFile keeps
// `include` as a plain directive so that expand resolves it the SRS way.
func (m *mapper) parseFile(name string, data []byte, stack []string) (crossplane.Directives, error) {
	if err := checkTokens(name, data); err != nil {
		return nil, err
	}
	payload, err := crossplane.Parse(name, &crossplane.ParseOptions{
		SingleFile:                true,
		SkipDirectiveContextCheck: true,
		SkipDirectiveArgsCheck:    true,
		Open: func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	})
	if err != nil {
		return nil, crossplaneErr(name, nil, err)
	}
	if len(payload.Errors) > 0 {
		pe := payload.Errors[0]
		return nil, crossplaneErr(name, pe.Line, pe.Error)
	}
	if len(payload.Config) == 0 {
		return nil, nil
	}
	return m.expand(payload.Config[0].Parsed, name, append(stack, name))
}

// crossplaneErr converts a crossplane error to an *Error naming file:line.
func crossplaneErr(name string, line *int, err error) error {
	msg := err.Error()
	var pe *crossplane.ParseError
	if errors.As(err, &pe) {
		msg = pe.What
		if line == nil {
			line = pe.Line
		}
	}
	e := &Error{File: name, Err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
	if line != nil {
		e.Line = *line
	}
	return e
}

// checkTokens rejects what crossplane silently accepts but nginx and SRS do
// not: `}` right after arguments (`rtc { enabled on }`, which would otherwise
// swallow the closing brace), and `{` or `;` with no directive before them.
func checkTokens(name string, data []byte) error {
	var bad *Error
	prevWord := false
	for t := range crossplane.Lex(bytes.NewReader(data)) {
		if bad != nil || t.Error != nil {
			continue // drain the lexer goroutine; crossplane reports lexer errors
		}
		if !t.IsQuoted && strings.HasPrefix(t.Value, "#") {
			continue
		}
		special := !t.IsQuoted && (t.Value == "{" || t.Value == ";" || t.Value == "}")
		if !special {
			prevWord = true
			continue
		}
		if (t.Value == "}") == prevWord {
			what := fmt.Sprintf("unexpected %q", t.Value)
			if t.Value == "}" {
				what = `unexpected "}", directive not terminated by ";"`
			}
			bad = &Error{File: name, Line: t.Line, Err: fmt.Errorf("%w: %s", ErrSyntax, what)}
		}
		prevWord = false
	}
	if bad != nil {
		return bad
	}
	return nil
}

// expand stamps each directive with its file and splices includes in place,
// at any depth, as SRS does.
func (m *mapper) expand(dirs crossplane.Directives, file string, stack []string) (crossplane.Directives, error) {
	out := make(crossplane.Directives, 0, len(dirs))
	for _, d := range dirs {
		d.File = file
		if d.Directive == "include" && !d.IsBlock() {
			inc, err := m.include(d, stack)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
			continue
		}
		if d.IsBlock() {
			block, err := m.expand(d.Block, file, stack)
			if err != nil {
				return nil, err
			}
			d.Block = block
		}
		out = append(out, d)
	}
	return out, nil
}

// include reads the files named by an include directive. A relative name is
// tried against the working directory first (SRS), then against the
// including file's directory (nginx). Globs are allowed; a glob matching
// nothing includes nothing.
func (m *mapper) include(d *crossplane.Directive, stack []string) (crossplane.Directives, error) {
	fail := func(format string, a ...any) error {
		return &Error{File: d.File, Line: d.Line, Directive: "include",
			Err: fmt.Errorf("%w: "+format, append([]any{ErrInclude}, a...)...)}
	}
	if len(d.Args) != 1 {
		return nil, fail("want one file name, got %d", len(d.Args))
	}
	if len(stack) >= maxIncludeDepth {
		return nil, fail("nested deeper than %d", maxIncludeDepth)
	}
	names, err := m.includeNames(d.Args[0], d.File)
	if err != nil {
		return nil, fail("%s: %v", d.Args[0], err)
	}
	var out crossplane.Directives
	for _, name := range names {
		if slices.Contains(stack, name) {
			return nil, fail("%s includes itself", name)
		}
		data, err := m.opts.read(name)
		if err != nil {
			return nil, fail("%v", err)
		}
		dirs, err := m.parseFile(name, data, stack)
		if err != nil {
			return nil, err
		}
		out = append(out, dirs...)
	}
	return out, nil
}

// includeNames resolves an include argument to the files to read.
func (m *mapper) includeNames(arg, from string) ([]string, error) {
	bases := []string{filepath.Clean(arg)}
	if !filepath.IsAbs(arg) {
		if alt := filepath.Join(filepath.Dir(from), arg); alt != bases[0] {
			bases = append(bases, alt)
		}
	}
	if strings.ContainsAny(arg, "*?[") {
		for _, b := range bases {
			names, err := filepath.Glob(b)
			if err != nil {
				return nil, err
			}
			if len(names) > 0 {
				slices.Sort(names)
				return names, nil
			}
		}
		return nil, nil
	}
	for _, b := range bases {
		if _, err := m.opts.read(b); err == nil {
			return []string{b}, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, fs.ErrNotExist
}

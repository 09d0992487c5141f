// Package lexer turns keepalived.conf text into lines of tokens, doing what
// keepalived does before it looks at keywords: comments (# and !), quoted
// strings, `include` with globs relative to the including file, `$NAME=value`
// definitions with `$NAME` / `${NAME}` substitution (multi-line definitions
// too) and `@id` / `@^id` conditional lines. Every token keeps the file and
// line it came from.
package lexer

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/govs/govs/internal/config/diag"
)

// Token is one word of a configuration line. Braces are tokens of their own
// even when glued to a word ("group{").
type Token struct {
	Text string
	// Quoted is set when the word was written in double quotes; such a word
	// is never a brace.
	Quoted bool
	Pos    diag.Pos
}

// IsOpen reports whether the token is an unquoted "{".
func (t Token) IsOpen() bool { return !t.Quoted && t.Text == "{" }

// IsClose reports whether the token is an unquoted "}".
func (t Token) IsClose() bool { return !t.Quoted && t.Text == "}" }

// Line is the tokens of one logical configuration line.
type Line struct {
	Pos    diag.Pos
	Tokens []Token
}

// Default limits against configurations that never end.
const (
	DefaultMaxIncludeDepth = 16
	// maxExpandDepth bounds recursive parameter substitution ($A=$A).
	maxExpandDepth = 16
	// maxLineLen bounds the length a substituted line may grow to.
	maxLineLen = 1 << 16
	// maxLines bounds the total number of lines produced.
	maxLines = 1 << 18
	// maxWork bounds the bytes of logical lines processed, so definitions
	// that expand into themselves or includes that fan out cannot run away.
	maxWork = 32 << 20
)

// Options controls lexing.
type Options struct {
	// FS reads the files; nil means the operating system's.
	FS FS
	// ConfigID selects `@ID` conditional lines (keepalived's -i option).
	ConfigID string
	// MaxIncludeDepth caps include nesting; 0 means DefaultMaxIncludeDepth.
	MaxIncludeDepth int
}

type lexer struct {
	opts   Options
	params map[string]string
	// maxName is the length of the longest defined parameter name.
	maxName int
	lines   []Line
	diags   diag.List
	// stack holds the files being read, to name include loops.
	stack []string
	full  bool
	work  int
}

// LexFile reads path (and everything it includes) into lines.
func LexFile(path string, opts Options) ([]Line, diag.List) {
	l := newLexer(opts)
	l.file(path, diag.Pos{}, 0)
	return l.lines, l.diags
}

// LexString lexes src as if it were the content of file name. Includes are
// read through opts.FS.
func LexString(name, src string, opts Options) ([]Line, diag.List) {
	l := newLexer(opts)
	l.stack = append(l.stack, name)
	l.text(name, src, 0)
	return l.lines, l.diags
}

func newLexer(opts Options) *lexer {
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.MaxIncludeDepth <= 0 {
		opts.MaxIncludeDepth = DefaultMaxIncludeDepth
	}
	return &lexer{opts: opts, params: map[string]string{}}
}

func (l *lexer) file(path string, from diag.Pos, depth int) {
	data, err := l.opts.FS.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.diags.Errorf(from, "include", "cannot read configuration file %s: file does not exist", path)
		} else {
			l.diags.Errorf(from, "include", "cannot read configuration file %s: %v", path, err)
		}
		return
	}
	l.stack = append(l.stack, path)
	l.text(path, string(data), depth)
	l.stack = l.stack[:len(l.stack)-1]
}

// text processes the physical lines of one file.
func (l *lexer) text(name, src string, depth int) {
	var (
		defName  string
		defParts []string
		defPos   diag.Pos
		inDef    bool
		defStore bool
	)
	for i, raw := range strings.Split(src, "\n") {
		pos := diag.Pos{File: name, Line: i + 1}
		raw = strings.TrimRight(raw, "\r")
		line := strings.TrimSpace(stripComment(raw))
		if inDef {
			if line == "" {
				continue // blank lines inside a multi-line definition are skipped
			}
			more := strings.HasSuffix(line, `\`)
			if more {
				line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
			}
			if line != "" {
				defParts = append(defParts, line)
			}
			if !more {
				if defStore {
					l.define(defName, strings.Join(defParts, "\n"))
				}
				inDef = false
			}
			continue
		}
		if line == "" {
			continue
		}
		// A multi-line definition starts with "$NAME= \" and goes on while
		// lines end with a backslash.
		// A definition excluded by its @id still has its body skipped.
		if strings.HasSuffix(line, `\`) {
			rest, applies := l.conditionalOK(line)
			if name, value, isDef := definition(rest); isDef {
				inDef, defName, defPos, defStore = true, name, pos, applies
				defParts = defParts[:0]
				if first := strings.TrimSpace(strings.TrimSuffix(value, `\`)); first != "" {
					defParts = append(defParts, first)
				}
				continue
			}
		}
		l.line(line, pos, depth, 0)
	}
	if inDef {
		l.diags.Errorf(defPos, "$"+defName, "multi-line definition of $%s is not terminated (last line ends with '\\')", defName)
		if defStore {
			l.define(defName, strings.Join(defParts, "\n"))
		}
	}
}

// conditionalOK applies an @id / @^id prefix: it returns the rest of the
// line and whether the line applies to this configuration id.
func (l *lexer) conditionalOK(line string) (string, bool) {
	if !strings.HasPrefix(line, "@") {
		return line, true
	}
	word, rest := line[1:], ""
	if i := strings.IndexAny(word, " \t"); i >= 0 {
		word, rest = word[:i], strings.TrimSpace(word[i+1:])
	}
	neg := strings.HasPrefix(word, "^")
	word = strings.TrimPrefix(word, "^")
	return rest, (word == l.opts.ConfigID) != neg
}

// definition recognises "$NAME=value".
func definition(line string) (name, value string, ok bool) {
	if !strings.HasPrefix(line, "$") {
		return "", "", false
	}
	eq := strings.IndexByte(line, '=')
	if eq < 2 {
		return "", "", false
	}
	name = line[1:eq]
	if !validParamName(name) {
		return "", "", false
	}
	return name, strings.TrimSpace(line[eq+1:]), true
}

func validParamName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// line processes one logical line whose comments are already gone.
func (l *lexer) line(line string, pos diag.Pos, depth, expand int) {
	if l.full {
		return
	}
	if l.work += len(line) + 1; l.work > maxWork {
		l.diags.Errorf(pos, "", "configuration expands to more than %d MiB of text; rest ignored", maxWork>>20)
		l.full = true
		return
	}
	line, ok := l.conditionalOK(line)
	if !ok || line == "" {
		return
	}
	if name, value, ok := definition(line); ok {
		l.define(name, value)
		return
	}
	expanded, err := l.substitute(line, pos)
	if err != nil {
		l.diags.Errorf(pos, "", "%v", err)
		return
	}
	if expanded != line {
		if expand >= maxExpandDepth {
			l.diags.Errorf(pos, "", "parameter substitution nested deeper than %d levels", maxExpandDepth)
			return
		}
		for _, part := range strings.Split(expanded, "\n") {
			// Comments were stripped before substitution, so a # from ${_HASH}
			// stays a character.
			if part = strings.TrimSpace(part); part != "" {
				l.line(part, pos, depth, expand+1)
			}
		}
		return
	}
	if strings.HasPrefix(line, "~SEQ") || strings.HasPrefix(line, "~LST") {
		l.diags.Warnf(pos, line[:4], "%s blocks are not supported by govs; line ignored", line[:4])
		return
	}
	toks := l.tokenize(line, pos)
	if len(toks) == 0 {
		return
	}
	if !toks[0].Quoted && toks[0].Text == "include" {
		l.include(toks, pos, depth)
		return
	}
	if len(l.lines) >= maxLines {
		l.diags.Errorf(pos, "", "configuration has more than %d lines; rest ignored", maxLines)
		l.full = true
		return
	}
	l.lines = append(l.lines, Line{Pos: pos, Tokens: toks})
}

func (l *lexer) include(toks []Token, pos diag.Pos, depth int) {
	if len(toks) < 2 {
		l.diags.Errorf(pos, "include", "include: missing file name")
		return
	}
	if depth+1 > l.opts.MaxIncludeDepth {
		l.diags.Errorf(pos, "include", "include: nested deeper than %d files (include loop? %s)", l.opts.MaxIncludeDepth, strings.Join(l.stack, " -> "))
		return
	}
	dir := filepath.Dir(pos.File)
	for _, t := range toks[1:] {
		pattern := t.Text
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		if !hasMeta(pattern) {
			l.file(pattern, pos, depth+1)
			continue
		}
		matches, err := l.opts.FS.Glob(pattern)
		if err != nil {
			l.diags.Errorf(pos, "include", "include: bad pattern %q: %v", t.Text, err)
			continue
		}
		if len(matches) == 0 {
			l.diags.Warnf(pos, "include", "include: no file matches %q", t.Text)
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			l.file(m, pos, depth+1)
		}
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// substitute replaces $NAME (followed by white space or the end) and
// ${NAME}; unknown names stay as they are, like keepalived. Replacement
// repeats until nothing changes, bounded against self-reference.
func (l *lexer) substitute(s string, pos diag.Pos) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	for round := 0; ; round++ {
		out, changed := l.substituteOnce(s, pos)
		if !changed {
			return out, nil
		}
		if round >= maxExpandDepth || len(out) > maxLineLen {
			return "", fmt.Errorf("parameter substitution does not terminate (self-referencing definition?)")
		}
		s = out
	}
}

func (l *lexer) substituteOnce(s string, pos diag.Pos) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		// No name is longer than nameLimit, so neither search looks
		// further: scanning to the end of the line after every '$' made a
		// line of many '$' quadratic.
		limit := l.nameLimit()
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:min(len(s), i+3+limit)], '}')
			if end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := l.lookup(name, pos); ok {
					b.WriteString(v)
					i += end + 3
					changed = true
					continue
				}
			}
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && j-i <= limit+1 {
			j++
		}
		if j-i-1 > limit {
			// Longer than any name: no substitution here.
			b.WriteByte(s[i])
			i++
			continue
		}
		if v, ok := l.lookup(s[i+1:j], pos); ok {
			b.WriteString(v)
			i = j
			changed = true
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), changed
}

// builtinNameLen is the length of the longest built-in parameter name
// (_INSTANCE).
const builtinNameLen = len("_INSTANCE")

// define sets a parameter and keeps the longest name known, which bounds
// how far substitution looks for a name after each '$'.
func (l *lexer) define(name, value string) {
	l.params[name] = value
	l.maxName = max(l.maxName, len(name))
}

// nameLimit is the longest name a '$' can start.
func (l *lexer) nameLimit() int { return max(l.maxName, builtinNameLen) }

func (l *lexer) lookup(name string, pos diag.Pos) (string, bool) {
	if v, ok := l.params[name]; ok {
		return v, true
	}
	switch name {
	case "_PWD":
		return filepath.Dir(pos.File), true
	case "_INSTANCE":
		return l.opts.ConfigID, true
	case "_HASH":
		return "#", true
	case "_BANG":
		return "!", true
	}
	return "", false
}

// stripComment cuts the line at the first # or ! outside double quotes.
func stripComment(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case (c == '#' || c == '!') && !inQuote:
			return s[:i]
		}
	}
	return s
}

// tokenize splits a line into words, quoted strings and braces.
func (l *lexer) tokenize(s string, pos diag.Pos) []Token {
	var toks []Token
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			toks = append(toks, Token{Text: cur.String(), Pos: pos})
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			flush()
		case c == '$' && i+1 < len(s) && s[i+1] == '{' && strings.IndexByte(s[i:], '}') > 0:
			// An unsubstituted ${NAME} stays one word.
			end := i + strings.IndexByte(s[i:], '}')
			cur.WriteString(s[i : end+1])
			inWord = true
			i = end
		case c == '{' || c == '}':
			flush()
			toks = append(toks, Token{Text: string(c), Pos: pos})
		case c == '"':
			flush()
			var q strings.Builder
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
					q.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				q.WriteByte(s[i])
			}
			if !closed {
				l.diags.Errorf(pos, "", "unterminated quoted string")
			}
			toks = append(toks, Token{Text: q.String(), Quoted: true, Pos: pos})
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks
}

package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Section is one `config TYPE [NAME]` block of a UCI file, after repeated
// named sections have been merged the way libuci merges them.
type Section struct {
	Type    string
	Name    string   // "" for anonymous
	Line    int      // line of the `config` statement
	Options []Option // in order of first appearance

	// auto is the name libuci generates for an anonymous section
	// (cfgXXYYYY); scripts address the section by it.
	auto string
}

// Option is an `option` or a `list` of a section.
type Option struct {
	Name   string
	Values []string // one for an option; the items for a list
	IsList bool
	Line   int // line of the last statement that set it
	// ValueLines holds the line of each item of Values, so that an error
	// about one list item can point at the statement that added it.
	ValueLines []int
}

// Package is a parsed UCI file.
type Package struct {
	Name     string
	Sections []*Section
}

// ParseError mirrors uci's message: "Parse error (REASON) at line L, byte B".
//
// Line and Byte are exactly what libuci reports, quirks included: Line counts
// the lines read so far that ended in a newline (an error on a last line
// without one names the line before it), and Byte is the offset into the
// buffer of the statement being parsed, which holds every line of a
// statement that runs over several lines.
type ParseError struct {
	File   string
	Line   int
	Byte   int
	Reason string
	// StmtLine is the line the failing statement starts on. uci does not
	// report it, but after an unclosed quote, Line is the end of the file
	// and only StmtLine says where to look.
	StmtLine int
}

// Error names the line as uci does, except where uci's count falls short
// of the statement's own line (a last line without a newline is not
// counted): there it names the statement's line.
func (e *ParseError) Error() string {
	switch {
	case e.StmtLine > e.Line:
		return fmt.Sprintf("%s:%d: %s (byte %d)", e.File, e.StmtLine, e.Reason, e.Byte)
	case e.StmtLine > 0 && e.StmtLine < e.Line:
		return fmt.Sprintf("%s:%d: %s (byte %d of the statement starting at line %d)", e.File, e.Line, e.Reason, e.Byte, e.StmtLine)
	}
	return fmt.Sprintf("%s:%d: %s (byte %d)", e.File, e.Line, e.Reason, e.Byte)
}

// UCIMessage is the error as the uci command line tool prints it, without
// its "uci: " prefix.
func (e *ParseError) UCIMessage() string {
	return fmt.Sprintf("Parse error (%s) at line %d, byte %d", e.Reason, e.Line, e.Byte)
}

// ParseUCI parses a UCI file the way `uci` does in strict mode (its default)
// when it loads the package name from a file of that name. A `package`
// statement inside the file is checked but, as in uci, has no effect.
//
// The parser replays libuci's: a statement buffer that is refilled line by
// line and rewritten in place as tokens are unquoted. Several of uci's
// rules only fall out of that in-place rewriting (a `;` separates statements
// after a quoted token but is swallowed after a plain one; an error's byte
// offset counts every line of a multi-line statement), so the emulation is
// deliberately literal rather than a conventional tokenizer.
func ParseUCI(name string, data []byte) (*Package, error) {
	p := &uciParser{
		src:    data,
		file:   name,
		pkg:    &Package{Name: name},
		byName: make(map[string]*Section),
		optIdx: make(map[*Section]map[string]int),
	}
	for p.off < len(p.src) {
		p.pos, p.stmt = 0, 0
		p.getln(0)
		if p.at(0) != 0 {
			if err := p.parseLine(); err != nil {
				return nil, err
			}
		}
	}
	return p.pkg, nil
}

// lineSeg records where in the statement buffer a physical line starts, so
// that positions in the buffer map back to line numbers of the file.
type lineSeg struct {
	start int
	line  int
}

type uciParser struct {
	src  []byte
	off  int // read position in src
	phys int // physical lines read from src
	file string

	// buf is libuci's statement buffer: NUL-terminated C strings that the
	// parser edits in place. Bytes past the terminator may be stale, as
	// in C, and are never relied upon.
	buf    []byte
	filled int // libuci's buf_filled: end of the bytes read into buf
	pos    int
	stmt   int // where the current statement's keyword starts in buf
	line   int // libuci's line counter
	segs   []lineSeg

	pkg    *Package
	cur    *Section
	count  int                 // sections created so far (libuci's n_section)
	byName map[string]*Section // first section with a given (generated) name
	optIdx map[*Section]map[string]int
}

func (p *uciParser) at(i int) byte {
	if i < len(p.buf) {
		return p.buf[i]
	}
	return 0
}

func (p *uciParser) set(i int, c byte) {
	if i < len(p.buf) {
		p.buf[i] = c
	}
}

// cstr returns the NUL-terminated string starting at i.
func (p *uciParser) cstr(i int) string {
	if i >= len(p.buf) {
		return ""
	}
	s := p.buf[i:]
	if z := bytes.IndexByte(s, 0); z >= 0 {
		s = s[:z]
	}
	return string(s)
}

func (p *uciParser) fail(reason string) error {
	return &ParseError{File: p.file, Line: p.line, Byte: p.pos, Reason: reason, StmtLine: p.lineAt(p.stmt)}
}

// lineAt maps a buffer position to the physical line it came from.
func (p *uciParser) lineAt(pos int) int {
	line := p.phys
	for i := len(p.segs) - 1; i >= 0; i-- {
		if p.segs[i].start <= pos {
			return p.segs[i].line
		}
	}
	return line
}

// getln reads the next line into the buffer at offset, like libuci's
// uci_getln on top of fgets: a NUL byte ends what fgets's caller sees of a
// line (the rest of that line is lost, and the next line is appended as its
// continuation), and only a line that ends in '\n' advances the line
// counter.
func (p *uciParser) getln(offset int) {
	for len(p.buf) <= offset {
		p.buf = append(p.buf, 0)
	}
	p.buf[offset] = 0
	for i := len(p.segs) - 1; i >= 0 && p.segs[i].start >= offset; i-- {
		p.segs = p.segs[:i]
	}
	for {
		if p.off >= len(p.src) {
			return
		}
		rest := p.src[p.off:]
		raw := rest
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			raw = rest[:nl+1]
		}
		p.off += len(raw)
		p.phys++
		if z := bytes.IndexByte(raw, 0); z >= 0 {
			raw = raw[:z]
		}
		if len(raw) == 0 {
			return
		}
		p.segs = append(p.segs, lineSeg{start: offset, line: p.phys})
		p.buf = append(p.buf[:offset], raw...)
		p.buf = append(p.buf, 0)
		offset += len(raw)
		p.filled = offset
		if raw[len(raw)-1] == '\n' {
			p.line++
			return
		}
	}
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func (p *uciParser) skipSpace() {
	for c := p.at(p.pos); c != 0 && isSpace(c); c = p.at(p.pos) {
		p.pos++
	}
}

func (p *uciParser) addc(target *int) {
	p.buf[*target] = p.buf[p.pos]
	*target++
	p.pos++
}

// backslash reports whether the character after a backslash is to be
// taken literally; a backslash at the end of a line instead joins the next
// line at its own position, so both it and the newline disappear.
func (p *uciParser) backslash() bool {
	p.pos++
	c := p.at(p.pos)
	if c == 0 || c == '\n' || (c == '\r' && p.at(p.pos+1) == '\n' && p.at(p.pos+2) == 0) {
		p.getln(p.pos)
		return false
	}
	return true
}

func (p *uciParser) parseDoubleQuote(target *int) error {
	p.pos++
	for {
		switch p.at(p.pos) {
		case '"':
			p.pos++
			return nil
		case 0:
			p.getln(p.pos)
			if p.at(p.pos) == 0 {
				return p.fail(`EOF with unterminated "`)
			}
		case '\\':
			if p.backslash() {
				p.addc(target)
			}
		default:
			p.addc(target)
		}
	}
}

func (p *uciParser) parseSingleQuote(target *int) error {
	p.pos++
	for {
		switch p.at(p.pos) {
		case '\'':
			p.pos++
			return nil
		case 0:
			p.getln(p.pos)
			if p.at(p.pos) == 0 {
				return p.fail("EOF with unterminated '")
			}
		default:
			p.addc(target)
		}
	}
}

// parseStr unquotes one token in place, writing it at *target.
func (p *uciParser) parseStr(target *int) error {
	next := true
loop:
	for {
		switch p.at(p.pos) {
		case '\'':
			if err := p.parseSingleQuote(target); err != nil {
				return err
			}
		case '"':
			if err := p.parseDoubleQuote(target); err != nil {
				return err
			}
		case '#':
			p.buf[p.pos] = 0
			break loop
		case 0:
			break loop
		case ';':
			// The ';' stays in the buffer for the caller, unless the
			// terminator written below lands on it: that happens after a
			// plain token, whose text was not shifted by unquoting.
			next = false
			break loop
		case '\\':
			if p.backslash() {
				p.addc(target)
			}
		default:
			p.addc(target)
		}
		if c := p.at(p.pos); c == 0 || isSpace(c) {
			break
		}
	}
	if p.at(p.pos) != 0 && next {
		p.pos++
	}
	p.set(*target, 0)
	return nil
}

func (p *uciParser) nextArg(required, name, pkg bool) (string, error) {
	p.skipSpace()
	val := p.pos
	target := p.pos
	if p.at(p.pos) == ';' {
		p.buf[p.pos] = 0
		p.pos++
	} else if err := p.parseStr(&target); err != nil {
		return "", err
	}
	s := p.cstr(val)
	if s == "" {
		if required {
			return "", p.fail("insufficient arguments")
		}
		return "", nil
	}
	if name && !validName(s, pkg) {
		return "", p.fail("invalid character in name field")
	}
	return s, nil
}

func (p *uciParser) assertEOL() error {
	p.skipSpace()
	s, err := p.nextArg(false, false, false)
	if err != nil {
		return err
	}
	if s != "" {
		return p.fail("too many arguments")
	}
	return nil
}

// strtok splits the keyword off at spaces and tabs only, as libuci's
// strtok(…, " \t") does, and terminates it in the buffer.
func (p *uciParser) strtok() (start, end int, ok bool) {
	i := p.pos
	for c := p.at(i); c == ' ' || c == '\t'; c = p.at(i) {
		i++
	}
	if p.at(i) == 0 {
		return 0, 0, false
	}
	j := i
	for c := p.at(j); c != 0 && c != ' ' && c != '\t'; c = p.at(j) {
		j++
	}
	p.set(j, 0)
	return i, j, true
}

// skipKeyword moves past the keyword ending at end and the separator after
// it; libuci refuses when no separator was read (a keyword that ends the
// file).
func (p *uciParser) skipKeyword(end int, reason string) error {
	if end+1 > p.filled {
		return p.fail(reason)
	}
	p.pos = end + 1
	return nil
}

func isKeyword(word []byte, full string) bool {
	return len(word) == 1 || string(word[1:]) == full[1:]
}

func (p *uciParser) parseLine() error {
	p.skipSpace()
	for {
		start, end, ok := p.strtok()
		if !ok {
			return nil
		}
		p.stmt = start
		word := p.buf[start:end]
		line := p.lineAt(start)
		var err error
		switch {
		case word[0] == '#':
			return nil
		case word[0] == 'p' && isKeyword(word, "package"):
			err = p.parsePackage(end)
		case word[0] == 'c' && isKeyword(word, "config"):
			err = p.parseConfig(end, line)
		case word[0] == 'o' && isKeyword(word, "option"):
			err = p.parseOption(end, line, false)
		case word[0] == 'l' && isKeyword(word, "list"):
			err = p.parseOption(end, line, true)
		default:
			err = p.fail("invalid command")
		}
		if err != nil {
			return err
		}
	}
}

func (p *uciParser) parsePackage(end int) error {
	if err := p.skipKeyword(end, "package without name"); err != nil {
		return err
	}
	if _, err := p.nextArg(true, true, true); err != nil {
		return err
	}
	// The file name is the package; the statement is only checked.
	return p.assertEOL()
}

func (p *uciParser) parseConfig(end, line int) error {
	if err := p.skipKeyword(end, "config without name"); err != nil {
		return err
	}
	typ, err := p.nextArg(true, false, false)
	if err != nil {
		return err
	}
	if !validType(typ) {
		return p.fail("invalid character in type field")
	}
	name, err := p.nextArg(false, true, false)
	if err != nil {
		return err
	}
	if err := p.assertEOL(); err != nil {
		return err
	}
	if name != "" {
		// libuci looks the name up among all sections, generated names
		// included, so `config t 'cfg01…'` can reopen an anonymous one.
		if s := p.byName[name]; s != nil {
			if s.Type != typ {
				return p.fail("section of different type overwrites prior section with same name")
			}
			p.cur = s
			return nil
		}
	}
	p.count++
	s := &Section{Type: typ, Name: name, Line: line}
	key := name
	if name == "" {
		s.auto = generatedName(p.count, typ)
		key = s.auto
	}
	if p.byName[key] == nil {
		p.byName[key] = s
	}
	p.pkg.Sections = append(p.pkg.Sections, s)
	p.cur = s
	return nil
}

func (p *uciParser) parseOption(end, line int, list bool) error {
	if p.cur == nil {
		return p.fail("option/list command found before the first section")
	}
	if err := p.skipKeyword(end, "option without name"); err != nil {
		return err
	}
	name, err := p.nextArg(true, true, false)
	if err != nil {
		return err
	}
	value, err := p.nextArg(false, false, false)
	if err != nil {
		return err
	}
	if err := p.assertEOL(); err != nil {
		return err
	}
	s := p.cur
	idx := p.optIdx[s]
	if idx == nil {
		idx = make(map[string]int)
		p.optIdx[s] = idx
	}
	i, exists := idx[name]
	switch {
	case list && exists:
		o := &s.Options[i]
		o.IsList = true
		o.Values = append(o.Values, value)
		o.ValueLines = append(o.ValueLines, line)
		o.Line = line
	case list:
		idx[name] = len(s.Options)
		s.Options = append(s.Options, Option{Name: name, Values: []string{value}, IsList: true, Line: line, ValueLines: []int{line}})
	case value == "":
		// While a file is read, an empty value neither creates nor
		// deletes anything.
	case exists:
		s.Options[i] = Option{Name: name, Values: []string{value}, Line: line, ValueLines: []int{line}}
	default:
		idx[name] = len(s.Options)
		s.Options = append(s.Options, Option{Name: name, Values: []string{value}, Line: line, ValueLines: []int{line}})
	}
	return nil
}

// validName is libuci's check for section, option and package names.
func validName(s string, pkg bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '_' || (pkg && c == '-') {
			continue
		}
		return false
	}
	return true
}

// validType is libuci's check for section types: printable ASCII, no space.
func validType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// generatedName is the name libuci gives the n-th section of a package when
// it is anonymous. libuci hashes the options too, but it names the section
// when the `config` line is read, before any option exists.
func generatedName(n int, typ string) string {
	return fmt.Sprintf("cfg%02x%04x", n, djbHash(typ)%(1<<16))
}

// djbHash is libuci's djbhash over a C string; its bytes are plain char,
// which is signed on the platforms uci's reference output comes from.
func djbHash(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = h*33 + uint32(int32(int8(s[i])))
	}
	return h & 0x7fffffff
}

// UCIName is the name uci addresses the section by: its name, or for an
// anonymous section the generated cfgXXYYYY name.
func (s *Section) UCIName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.auto
}

// Option returns the named option, or nil.
func (s *Section) Option(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

// Section returns the section uci would find under name (a generated name
// finds an anonymous section), or nil.
func (p *Package) Section(name string) *Section {
	for _, s := range p.Sections {
		if s.UCIName() == name {
			return s
		}
	}
	return nil
}

// ShowRef is how `uci show` names the i-th section of the package: its name,
// or @TYPE[n] for an anonymous section, n counting every section of that
// type before it.
func (p *Package) ShowRef(i int) string {
	s := p.Sections[i]
	if s.Name != "" {
		return s.Name
	}
	n := 0
	for _, t := range p.Sections[:i] {
		if t.Type == s.Type {
			n++
		}
	}
	return "@" + s.Type + "[" + strconv.Itoa(n) + "]"
}

// refName falls back to a generated name for sections built by hand.
func (p *Package) refName(i int) string {
	s := p.Sections[i]
	if name := s.UCIName(); name != "" {
		return name
	}
	return generatedName(i+1, s.Type)
}

// escape is uci's quoting for text written between single quotes.
func escape(s string) string {
	return strings.ReplaceAll(s, "'", `'\''`)
}

func (o *Option) value() string {
	if len(o.Values) == 0 {
		return ""
	}
	return o.Values[len(o.Values)-1]
}

// Export renders the package like `uci export` (withNames: `uci -n export`,
// which also names anonymous sections).
func (p *Package) Export(withNames bool) string {
	var b strings.Builder
	b.WriteString("package " + escape(p.Name) + "\n")
	for i, s := range p.Sections {
		// uci writes the type unquoted whatever it contains, so a type
		// with a quote, '#', ';' or backslash does not read back the same.
		b.WriteString("\nconfig " + escape(s.Type))
		if s.Name != "" || withNames {
			b.WriteString(" '" + escape(p.refName(i)) + "'")
		}
		b.WriteString("\n")
		for j := range s.Options {
			o := &s.Options[j]
			if !o.IsList {
				b.WriteString("\toption " + escape(o.Name) + " '" + escape(o.value()) + "'\n")
				continue
			}
			for _, v := range o.Values {
				b.WriteString("\tlist " + escape(o.Name) + " '" + escape(v) + "'\n")
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}

// Show renders the package like `uci show`, which names an anonymous
// section @TYPE[i]; with extended it renders like `uci -X show`, which
// uses the generated cfgXXYYYY names instead.
func (p *Package) Show(extended bool) string {
	var b strings.Builder
	count := make(map[string]int)
	for i, s := range p.Sections {
		ref := s.Name
		if ref == "" {
			if extended {
				ref = p.refName(i)
			} else {
				ref = "@" + s.Type + "[" + strconv.Itoa(count[s.Type]) + "]"
			}
		}
		count[s.Type]++
		b.WriteString(p.Name + "." + ref + "=" + s.Type + "\n")
		for j := range s.Options {
			o := &s.Options[j]
			b.WriteString(p.Name + "." + ref + "." + o.Name + "=")
			if !o.IsList {
				b.WriteString("'" + escape(o.value()) + "'")
			} else {
				for k, v := range o.Values {
					if k > 0 {
						b.WriteByte(' ')
					}
					b.WriteString("'" + escape(v) + "'")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

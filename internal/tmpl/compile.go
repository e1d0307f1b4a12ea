// Package tmpl checks, caches and renders Herald's templates. Email HTML
// renders with html/template (contextual escaping), every other part with
// text/template; both with a small function set, missing keys as errors,
// and a cap on each rendering's time and output. A rendered email subject
// is folded onto one line, so no data can add a header.
package tmpl

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/heraldhq/herald"
)

// Limits bound what a template may be and do. Zero fields get defaults.
type Limits struct {
	// MaxSourceBytes bounds each part's source at save; default 64 KiB.
	MaxSourceBytes int
	// MaxOutputBytes bounds each rendered part; default 100,000, the
	// limit of a content field given inline.
	MaxOutputBytes int
	// MaxTotalBytes bounds all the parts of one variant's rendering
	// together (push data has up to 100 of them); default 256 KiB. The
	// log keeps every rendering, so this bounds what a send can store.
	MaxTotalBytes int
	// RenderTimeout bounds the rendering of one locale variant, all its
	// parts together; default 1s: far above what a real template needs
	// (microseconds), so a busy machine never fails one, while a runaway
	// loop still ends soon.
	RenderTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = 64 << 10
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 100_000
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 256 << 10
	}
	if l.RenderTimeout <= 0 {
		l.RenderTimeout = time.Second
	}
	return l
}

// Shape limits of a template.
const (
	maxLocales  = 100
	maxDataKeys = 100
	maxNameLen  = 128
)

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	localeRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
	dataKey  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// CheckName reports whether name can name a template: 1 to 128 letters,
// digits, dots, dashes and underscores, starting with a letter or digit.
func CheckName(name string) error {
	if len(name) > maxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("must be 1 to %d letters, digits, '.', '-' or '_', starting with a letter or digit", maxNameLen)
	}
	return nil
}

// part is one compiled source: a slot of a channel's content.
type part struct {
	field string // JSON path in the template, for messages: "locales.de.email.html"
	slot  string // "subject", "html", "text", "title", "body", "url" or "data.<key>"
	text  *texttemplate.Template
	html  *htmltemplate.Template
	pool  *sync.Pool // of *instance, see render
}

// group is the compiled parts of one channel; nil when the template has none.
type group []part

type variant struct {
	prefix           string // "" or "locales.<tag>.", for messages
	email, sms, push group
	has              map[herald.Channel]bool
}

func (v variant) group(c herald.Channel) group {
	switch c {
	case herald.ChannelEmail:
		return v.email
	case herald.ChannelSMS:
		return v.sms
	}
	return v.push
}

// Compiled is a checked and parsed template version, safe for concurrent
// renders.
type Compiled struct {
	Name    string
	Version int
	base    variant
	locales map[string]variant // keys as saved
	limits  Limits
	size    int // the bytes of every part's source, for the cache's bound
}

// Compile checks t and parses every part: a CodeInvalid error names each
// offending field (its JSON path in the PUT body) with the line of the
// problem.
func Compile(t herald.Template, limits Limits) (*Compiled, error) {
	limits = limits.withDefaults()
	var v herald.Validation
	c := &Compiled{Name: t.Name, Version: t.Version, limits: limits}
	c.base = compileParts(&v, "", t.TemplateParts, nil, limits, &c.size)
	if len(t.Channels()) == 0 {
		v.Add("email", "a template needs at least one of email, sms or push")
	}
	if len(t.Locales) > maxLocales {
		v.Add("locales", "at most %d locales", maxLocales)
	}
	seen := map[string]string{}
	for _, tag := range slices.Sorted(maps.Keys(t.Locales)) {
		field := "locales." + tag
		if !localeRE.MatchString(tag) || len(tag) > 35 {
			v.Add(field, "is not a locale tag such as de or pt-BR")
			continue
		}
		if other, ok := seen[strings.ToLower(tag)]; ok {
			v.Add(field, "is the same locale as %q", other)
			continue
		}
		seen[strings.ToLower(tag)] = tag
		lp := t.Locales[tag]
		if len(lp.Channels()) == 0 {
			v.Add(field, "a locale needs at least one of email, sms or push")
		}
		if c.locales == nil {
			c.locales = map[string]variant{}
		}
		c.locales[tag] = compileParts(&v, field+".", lp, &t.TemplateParts, limits, &c.size)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// compileParts compiles one variant's groups. base, for a locale, is the
// base parts: a locale translates the base and cannot add a channel.
func compileParts(v *herald.Validation, prefix string, p herald.TemplateParts, base *herald.TemplateParts, limits Limits, size *int) variant {
	out := variant{prefix: prefix, has: map[herald.Channel]bool{}}
	for _, ch := range p.Channels() {
		out.has[ch] = true
		if base != nil && !base.Has(ch) {
			v.Add(prefix+string(ch), "the base template has no %s part: a locale translates the base parts", ch)
		}
	}
	add := func(g *group, field, slot, src string, html bool) {
		if src == "" {
			return
		}
		if len(src) > limits.MaxSourceBytes {
			v.Add(field, "at most %d bytes", limits.MaxSourceBytes)
			return
		}
		pt, err := compilePart(field, slot, src, html)
		if err != nil {
			v.Add(field, "%v", err)
			return
		}
		*size += len(src)
		*g = append(*g, pt)
	}
	if e := p.Email; e != nil {
		f := prefix + "email."
		if strings.TrimSpace(e.Subject) == "" {
			v.Add(f+"subject", "is required")
		}
		if e.HTML == "" && e.Text == "" {
			v.Add(f+"html", "give html, text or both")
		}
		out.email = group{}
		add(&out.email, f+"subject", "subject", e.Subject, false)
		add(&out.email, f+"html", "html", e.HTML, true)
		add(&out.email, f+"text", "text", e.Text, false)
	}
	if s := p.SMS; s != nil {
		if s.Text == "" {
			v.Add(prefix+"sms.text", "is required")
		}
		out.sms = group{}
		add(&out.sms, prefix+"sms.text", "text", s.Text, false)
	}
	if pu := p.Push; pu != nil {
		f := prefix + "push."
		if pu.Title == "" && pu.Body == "" {
			v.Add(f+"title", "give a title, a body or both")
		}
		if len(pu.Data) > maxDataKeys {
			v.Add(f+"data", "at most %d keys", maxDataKeys)
		}
		out.push = group{}
		add(&out.push, f+"title", "title", pu.Title, false)
		add(&out.push, f+"body", "body", pu.Body, false)
		add(&out.push, f+"url", "url", pu.URL, false)
		add(&out.push, f+"icon", "icon", pu.Icon, false)
		for _, k := range slices.Sorted(maps.Keys(pu.Data)) {
			if !dataKey.MatchString(k) {
				v.Add(f+"data."+k, "keys are 1 to 64 letters, digits, '.', '-' or '_'")
				continue
			}
			add(&out.push, f+"data."+k, "data."+k, pu.Data[k], false)
		}
	}
	return out
}

// lineRE finds the line in a parse error: "template: NAME:LINE: msg" or
// "template: NAME:LINE:COL: msg".
var lineRE = regexp.MustCompile(`^template: [^:]*:(\d+):(?:\d+:)? ?(.*)$`)

// compilePart parses one source and checks it: one template only (no
// define, block or template actions, so no recursion), and for HTML the
// contextual escaping analysis, which html/template otherwise runs at the
// first render.
func compilePart(field, slot, src string, html bool) (part, error) {
	pt := part{field: field, slot: slot, pool: &sync.Pool{}}
	var tree *parse.Tree
	var err error
	if html {
		pt.html, err = htmltemplate.New(field).Funcs(htmltemplate.FuncMap(funcs)).Option("missingkey=error").Parse(src)
		if err == nil {
			if len(pt.html.Templates()) > 1 {
				err = fmt.Errorf("define and block are not supported")
			}
			tree = pt.html.Tree
		}
	} else {
		pt.text, err = texttemplate.New(field).Funcs(funcs).Option("missingkey=error").Parse(src)
		if err == nil {
			if len(pt.text.Templates()) > 1 {
				err = fmt.Errorf("define and block are not supported")
			}
			tree = pt.text.Tree
		}
	}
	if err != nil {
		return part{}, withLine(err)
	}
	if tree == nil || tree.Root == nil {
		return part{}, fmt.Errorf("is empty")
	}
	if err := instrument(tree, tree.Root); err != nil {
		return part{}, err
	}
	if html {
		// Escaping happens on a render; one with no data stops at the first
		// field, but only after the whole template was analysed.
		b := newBudget(time.Now().Add(50*time.Millisecond), 1<<20)
		_, err := pt.render(nil, b, 1<<20)
		var he *htmltemplate.Error
		if asHTMLError(err, &he) {
			return part{}, htmlError(he)
		}
	}
	return pt, nil
}

func withLine(err error) error {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("line %s: %s", m[1], m[2])
	}
	return err
}

var htmlLineRE = regexp.MustCompile(`^html/template:[^:]*:(\d+):(?:\d+:)? ?(.*)$`)

// htmlError turns an escaping error into "line N: what", without the
// escaper's internal context dump.
func htmlError(he *htmltemplate.Error) error {
	msg := he.Error()
	if m := htmlLineRE.FindStringSubmatch(msg); m != nil {
		msg = "line " + m[1] + ": " + m[2]
	} else if he.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", he.Line, he.Description)
	}
	if i := strings.Index(msg, ": {state"); i > 0 {
		msg = msg[:i]
	}
	return errors.New(msg)
}

// tickName is the function every range body calls first (see instrument).
const tickName = "heraldTick"

// instrument checks the tree's actions and makes every range body start
// with {{$heraldTick := heraldTick}}: text/template has no way to stop a
// render from outside, and a range (over a number, or nested over long
// lists) can run for hours without writing a byte. The tick checks the
// render's deadline and ends it with an error. A declaration writes
// nothing, and html/template leaves it unescaped, so the output is as if
// it were not there.
func instrument(tree *parse.Tree, n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := instrument(tree, c); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("line %s: {{template}} is not supported", lineOf(tree, n))
	case *parse.IfNode:
		return instrumentBranch(tree, &n.BranchNode, false)
	case *parse.WithNode:
		return instrumentBranch(tree, &n.BranchNode, false)
	case *parse.RangeNode:
		return instrumentBranch(tree, &n.BranchNode, true)
	}
	return nil
}

func instrumentBranch(tree *parse.Tree, b *parse.BranchNode, loop bool) error {
	if err := instrument(tree, b.List); err != nil {
		return err
	}
	if err := instrument(tree, b.ElseList); err != nil {
		return err
	}
	if loop {
		b.List.Nodes = append([]parse.Node{tickAction()}, b.List.Nodes...)
	}
	return nil
}

func lineOf(tree *parse.Tree, n parse.Node) string {
	loc, _ := tree.ErrorContext(n)
	if i := strings.LastIndexByte(loc, ':'); i > 0 {
		loc = loc[:i]
		if j := strings.LastIndexByte(loc, ':'); j >= 0 {
			return loc[j+1:]
		}
	}
	return "?"
}

// tickAction returns a fresh {{$heraldTick := heraldTick}} node.
func tickAction() parse.Node {
	trees, err := parse.Parse("tick", "{{$"+tickName+" := "+tickName+"}}", "{{", "}}",
		map[string]any{tickName: func() (string, error) { return "", nil }})
	if err != nil {
		panic("tmpl: the tick action does not parse: " + err.Error())
	}
	return trees["tick"].Root.Nodes[0]
}

// Channels lists the channels the template has parts for.
func (c *Compiled) Channels() []herald.Channel {
	var out []herald.Channel
	for _, ch := range herald.AllChannels() {
		if c.base.has[ch] {
			out = append(out, ch)
		}
	}
	return out
}

// Variant picks the variant for a recipient's locale: the exact tag, then
// its language, then the app's default locale (exact, then language), and
// last the base parts (""). Tags compare case-insensitively.
func (c *Compiled) Variant(locale, appDefault string) string {
	for _, l := range []string{locale, language(locale), appDefault, language(appDefault)} {
		if l == "" {
			continue
		}
		for tag := range c.locales {
			if strings.EqualFold(tag, l) {
				return tag
			}
		}
	}
	return ""
}

func language(tag string) string {
	if i := strings.IndexAny(tag, "-_"); i > 0 {
		return tag[:i]
	}
	return ""
}

// CheckLocale reports whether tag looks like a BCP 47 locale tag (de, pt-BR).
func CheckLocale(tag string) error {
	if len(tag) > 35 || !localeRE.MatchString(tag) {
		return fmt.Errorf("is not a locale tag such as de or pt-BR")
	}
	return nil
}

package tmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"reflect"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/heraldhq/herald"
)

// funcs is the function set every template may call besides
// text/template's builtins (and, or, not, len, index, slice, print,
// printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery). Optional
// data is read with index, which yields nothing for a missing key instead
// of the error a field gives: {{default "there" (index . "name")}}.
var funcs = texttemplate.FuncMap{
	"default": func(def, v any) any {
		if isEmpty(v) {
			return def
		}
		return v
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"join": func(sep string, list any) (string, error) {
		rv := reflect.ValueOf(list)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return "", fmt.Errorf("join of a %T: want a list", list)
		}
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return strings.Join(parts, sep), nil
	},
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	}
	return rv.IsZero()
}

var (
	errTimeout       = errors.New("render time exceeded")
	errTooLarge      = errors.New("render output exceeded")
	errTotalTooLarge = errors.New("render output of all parts exceeded")
)

// budget is one render's deadline, checked on every write and at the start
// of every range iteration.
type budget struct {
	deadline time.Time
	expired  bool
	left     int // bytes all parts may still write together
}

func newBudget(deadline time.Time, total int) *budget {
	return &budget{deadline: deadline, left: total}
}

func (b *budget) check() error {
	if b.expired || time.Now().After(b.deadline) {
		b.expired = true
		return errTimeout
	}
	return nil
}

func (b *budget) tick() (string, error) { return "", b.check() }

// capWriter collects a part's output up to max bytes.
type capWriter struct {
	buf bytes.Buffer
	max int
	b   *budget
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		return 0, errTooLarge
	}
	if len(p) > w.b.left {
		return 0, errTotalTooLarge
	}
	w.b.left -= len(p)
	if err := w.b.check(); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// instance is a clone of a part's parsed template, executed by one render
// at a time: its tick checks the budget of the render holding it, so
// concurrent renders never share a budget. Instances are pooled because an
// html/template clone is escaped on its first execution, which costs more
// than the execution itself; a reused one skips that.
type instance struct {
	b    *budget
	exec func(w io.Writer, data any) error
}

func (p part) newInstance() (*instance, error) {
	in := &instance{}
	tick := map[string]any{tickName: func() (string, error) { return in.b.tick() }}
	if p.html != nil {
		c, err := p.html.Clone()
		if err != nil {
			return nil, err
		}
		in.exec = c.Funcs(tick).Execute
		return in, nil
	}
	c, err := p.text.Clone()
	if err != nil {
		return nil, err
	}
	in.exec = c.Funcs(tick).Execute
	return in, nil
}

// render executes the part with data within the budget and max bytes.
func (p part) render(data any, b *budget, max int) (string, error) {
	in, _ := p.pool.Get().(*instance)
	if in == nil {
		var err error
		if in, err = p.newInstance(); err != nil {
			return "", err
		}
	}
	w := &capWriter{max: max, b: b}
	in.b = b
	err := in.exec(w, data)
	in.b = nil
	var he *htmltemplate.Error
	if !asHTMLError(err, &he) {
		// An execution error leaves nothing behind in the template; an
		// escaping error would repeat on every use, so that one is dropped.
		p.pool.Put(in)
	}
	if err != nil {
		return "", err
	}
	return w.buf.String(), nil
}

func asHTMLError(err error, he **htmltemplate.Error) bool {
	return err != nil && errors.As(err, he) && (*he).ErrorCode != htmltemplate.OK
}

// Render renders variant ("" for the base parts; see Variant) with data.
// A channel the variant lacks renders from the base parts. Errors are
// CodeInvalid: a missing key names "data.<path>", anything else the data
// or the template with the part and line.
func (c *Compiled) Render(variantTag string, data map[string]any) (herald.Rendered, error) {
	v, ok := c.locales[variantTag]
	if !ok {
		v = c.base
	}
	root := normalize(data)
	if root == nil {
		root = map[string]any{}
	}
	b := newBudget(time.Now().Add(c.limits.RenderTimeout), c.limits.MaxTotalBytes)
	var out herald.Rendered
	for _, ch := range c.Channels() {
		from := v
		if !v.has[ch] {
			from = c.base
		}
		content, err := c.renderGroup(from.group(ch), root, b)
		if err != nil {
			return herald.Rendered{}, err
		}
		empty := func(what string) error {
			return herald.Invalid("data", fmt.Sprintf("%s%s renders empty", from.prefix, what))
		}
		switch ch {
		case herald.ChannelEmail:
			if content.HTML == "" && content.Body == "" {
				return herald.Rendered{}, empty("email (html and text)")
			}
			out.Email = &content
		case herald.ChannelSMS:
			if strings.TrimSpace(content.Body) == "" {
				return herald.Rendered{}, empty("sms.text")
			}
			out.SMS = &content
		case herald.ChannelPush:
			if content.Title == "" && content.Body == "" {
				return herald.Rendered{}, empty("push (title and body)")
			}
			out.Push = &content
		}
	}
	return out, nil
}

func (c *Compiled) renderGroup(g group, data any, b *budget) (herald.Content, error) {
	var out herald.Content
	for _, p := range g {
		s, err := p.render(data, b, c.limits.MaxOutputBytes)
		if err != nil {
			return herald.Content{}, c.renderError(p, err, b)
		}
		switch p.slot {
		case "subject":
			out.Subject = oneLine(s)
		case "html":
			out.HTML = s
		case "text", "body":
			out.Body = s
		case "title":
			out.Title = s
		case "url":
			out.URL = strings.TrimSpace(s)
		case "icon":
			out.Icon = strings.TrimSpace(s)
		default:
			if out.Data == nil {
				out.Data = map[string]string{}
			}
			out.Data[strings.TrimPrefix(p.slot, "data.")] = s
		}
	}
	return out, nil
}

// oneLine folds every run of line breaks (and the spaces around them)
// into one space: a subject goes into a mail header, where a CR or LF
// from the data would otherwise start a header of its own.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

var missingKeyRE = regexp.MustCompile(`at <\.([^>]*)>: (?:map has no entry for key|nil data; no entry for key)`)

func (c *Compiled) renderError(p part, err error, b *budget) error {
	switch {
	case b.expired || errors.Is(err, errTimeout):
		return herald.Invalid("template", fmt.Sprintf("%s took longer than %v to render", p.field, c.limits.RenderTimeout))
	case errors.Is(err, errTooLarge):
		return herald.Invalid("template", fmt.Sprintf("%s renders more than %d bytes", p.field, c.limits.MaxOutputBytes))
	case errors.Is(err, errTotalTooLarge):
		return herald.Invalid("template", fmt.Sprintf("the parts render more than %d bytes together (at %s)", c.limits.MaxTotalBytes, p.field))
	}
	var he *htmltemplate.Error
	if asHTMLError(err, &he) {
		return herald.Invalid("template", fmt.Sprintf("%s: %v", p.field, htmlError(he)))
	}
	where := p.field
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		where += " line " + m[1]
	}
	if m := missingKeyRE.FindStringSubmatch(err.Error()); m != nil {
		return herald.Invalid("data."+m[1], fmt.Sprintf("is missing: %s uses it", where))
	}
	return herald.Invalid("data", fmt.Sprintf("%s: %v", p.field, withLine(err)))
}

// normalize turns the JSON numbers of decoded data into int64 (integers)
// or float64, so that templates print and compare them as numbers.
func normalize(data map[string]any) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		out[k] = normalizeValue(v)
	}
	return out
}

func normalizeValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case map[string]any:
		return normalize(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalizeValue(x)
		}
		return out
	}
	return v
}

package tmpl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tmpl"
)

// FuzzRender: any template and data either fail as a 422 naming a field,
// at save or at render, or render within the caps: each part at most
// MaxOutputBytes, all together at most MaxTotalBytes, a subject on one
// line, and the render ends (the time cap stops loops that never write).
func FuzzRender(f *testing.F) {
	for _, s := range [][4]string{
		{"Hi {{.name}}", "<p>Hello <b>{{.name}}</b></p>", "Hello {{.name}}!", `{"name": "Ada"}`},
		{"{{.a}}\r\nBcc: x@example.com", `<a href="{{.u}}">x</a>`, "{{range .list}}{{.}},{{end}}", `{"a": "b\nc", "u": "javascript:alert(1)", "list": [1, 2.5, "x"]}`},
		{"{{range $i := 1000000000}}{{end}}x", "", "{{range $i := 100000}}{{$i}}{{end}}", `{}`},
		{"{{printf \"%0999999d\" 1}}", "{{.x}}", "{{default \"there\" (index . \"name\")}}", `{"x": null}`},
		{"{{define \"a\"}}{{end}}", "<script>var x = {{.x}};</script>", "{{template \"a\"}}", `{"x": {"y": [true]}}`},
		{"{{.missing.deep}}", "{{join \", \" .l}}", "{{upper .s}} {{len .s}}", `{"l": ["a", "b"], "s": "ß"}`},
		{"{{", "<p {{.attr}}>", "{{.x | printf \"%v\"}}", `not json`},
		{"{{slice .s 1 0}}", "{{index .m \"k\" 3}}", "{{call .f}}", `{"s": "abc", "m": {"k": [1]}}`},
	} {
		f.Add(s[0], s[1], s[2], []byte(s[3]))
	}
	limits := tmpl.Limits{MaxOutputBytes: 4096, MaxTotalBytes: 6000, RenderTimeout: 50 * time.Millisecond}
	f.Fuzz(func(t *testing.T, subject, html, text string, rawData []byte) {
		tm := herald.Template{Name: "t", Version: 1, TemplateParts: herald.TemplateParts{
			Email: &herald.EmailParts{Subject: subject, HTML: html, Text: text},
			SMS:   &herald.SMSParts{Text: text},
			Push:  &herald.PushParts{Title: subject, Body: text, Data: map[string]string{"k": html}},
		}}
		c, err := tmpl.Compile(tm, limits)
		if err != nil {
			invalidWithField(t, "compile", err)
			return
		}
		var data map[string]any
		dec := json.NewDecoder(bytes.NewReader(rawData))
		dec.UseNumber()
		if dec.Decode(&data) != nil {
			data = nil
		}
		start := time.Now()
		r, err := c.Render("", data)
		if took := time.Since(start); took > 10*time.Second {
			// Far beyond the 50ms cap: only a render the cap does not stop gets here.
			t.Fatalf("render took %v", took)
		}
		if err != nil {
			invalidWithField(t, "render", err)
			return
		}
		total := 0
		for _, ct := range []*herald.Content{r.Email, r.SMS, r.Push} {
			if ct == nil {
				continue
			}
			for _, s := range append([]string{ct.Subject, ct.HTML, ct.Body, ct.Title, ct.URL, ct.Icon}, mapValues(ct.Data)...) {
				if len(s) > limits.MaxOutputBytes {
					t.Fatalf("a part renders %d bytes, over the cap", len(s))
				}
				total += len(s)
			}
		}
		// Folding the subject and trimming url/icon only shorten what was written.
		if total > limits.MaxTotalBytes {
			t.Fatalf("the parts render %d bytes together, over the cap", total)
		}
		if r.Email != nil && strings.ContainsAny(r.Email.Subject, "\r\n") {
			t.Fatalf("subject %q spans lines", r.Email.Subject)
		}
	})
}

func invalidWithField(t *testing.T, step string, err error) {
	t.Helper()
	var e *herald.Error
	if !errors.As(err, &e) || e.Code != herald.CodeInvalid || len(e.Fields) == 0 {
		t.Fatalf("%s: %v, want a 422 naming a field", step, err)
	}
	for _, f := range e.Fields {
		if f.Field == "" {
			t.Fatalf("%s: %v names an empty field", step, err)
		}
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

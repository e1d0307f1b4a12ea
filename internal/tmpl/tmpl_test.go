package tmpl_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tmpl"
)

func compile(t *testing.T, tm herald.Template) *tmpl.Compiled {
	t.Helper()
	c, err := tmpl.Compile(tm, tmpl.Limits{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// fields returns the field errors of a CodeInvalid error as field → message.
func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	var e *herald.Error
	if !errors.As(err, &e) || e.Code != herald.CodeInvalid {
		t.Fatalf("error = %v, want CodeInvalid", err)
	}
	out := map[string]string{}
	for _, f := range e.Fields {
		out[f.Field] = f.Message
	}
	return out
}

func sms(src string) herald.Template {
	return herald.Template{Name: "t", TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: src}}}
}

func TestCompileNamesThePartAndTheLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		tm    herald.Template
		field string
		want  string
	}{
		{"syntax", herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "Hi",
			HTML: "<p>\n{{.name</p>"}}}, "email.html", "line 2:"},
		{"unknown function", sms("a\nb\n{{shout .name}}"), "sms.text", `line 3: function "shout" not defined`},
		{"define", sms(`{{define "x"}}x{{end}}{{template "x"}}`), "sms.text", "not supported"},
		{"template call", sms("x\n{{template \"other\"}}"), "sms.text", "line 2: {{template}} is not supported"},
		{"ambiguous html", herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "s",
			HTML: "<a href=\"{{.u}}\n{{if .x}}\">{{end}}"}}}, "email.html", "line 2: {{if}} branches end in different contexts"},
		{"locale syntax", herald.Template{TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "ok"}},
			Locales: map[string]herald.TemplateParts{"de": {SMS: &herald.SMSParts{Text: "{{end}}"}}}}, "locales.de.sms.text", "line 1:"},
		{"locale adds a channel", herald.Template{TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "ok"}},
			Locales: map[string]herald.TemplateParts{"de": {Push: &herald.PushParts{Title: "x"}}}}, "locales.de.push", "no push part"},
		{"bad locale", herald.Template{TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "ok"}},
			Locales: map[string]herald.TemplateParts{"not a locale": {SMS: &herald.SMSParts{Text: "x"}}}}, "locales.not a locale", "not a locale tag"},
		{"no part", herald.Template{}, "email", "at least one"},
		{"email without body", herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "s"}}}, "email.html", "html, text or both"},
		{"too large", sms(strings.Repeat("x", 64<<10+1)), "sms.text", "at most 65536 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tmpl.Compile(tt.tm, tmpl.Limits{})
			got := fields(t, err)
			if msg, ok := got[tt.field]; !ok || !strings.Contains(msg, tt.want) {
				t.Errorf("errors = %v, want %s: …%s…", got, tt.field, tt.want)
			}
		})
	}
}

func TestHTMLIsEscapedByContextAndTextIsNot(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{
		Subject: "For {{.name}}",
		HTML:    `<p>Hello {{.name}}</p><a href="{{.link}}">go</a><script>var n = {{.name}};</script>`,
		Text:    "Hello {{.name}}",
	}}})
	r, err := c.Render("", map[string]any{"name": `<img src=x onerror=alert(1)>"`, "link": "javascript:alert(1)"})
	if err != nil {
		t.Fatal(err)
	}
	html := r.Email.HTML
	for _, bad := range []string{"<img", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("html contains %q unescaped: %s", bad, html)
		}
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;&#34;", `href="#ZgotmplZ"`, `var n = "\u003cimg`} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q: %s", want, html)
		}
	}
	if r.Email.Body != `Hello <img src=x onerror=alert(1)>"` {
		t.Errorf("text part = %q, want the data as given", r.Email.Body)
	}
}

func TestSubjectIsFoldedOntoOneLine(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{
		Subject: "Order {{.id}}\n", Text: "x"}}})
	r, err := c.Render("", map[string]any{"id": "42\r\nBcc: victim@example.com\n\nbody"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Email.Subject, "Order 42 Bcc: victim@example.com body"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
}

func TestMissingKeyNamesItsPath(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{
		SMS:  &herald.SMSParts{Text: "Hi {{.user.first}}"},
		Push: &herald.PushParts{Title: "{{default \"there\" (index . \"nick\")}}"},
	}})
	_, err := c.Render("", map[string]any{"user": map[string]any{"last": "Lovelace"}})
	got := fields(t, err)
	if msg := got["data.user.first"]; !strings.Contains(msg, "sms.text line 1") {
		t.Errorf("errors = %v, want data.user.first naming sms.text line 1", got)
	}
	r, err := c.Render("", map[string]any{"user": map[string]any{"first": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.SMS.Body != "Hi Ada" || r.Push.Title != "there" {
		t.Errorf("rendered %+v %+v: index reads optional data without an error", r.SMS, r.Push)
	}
}

func TestFunctionsAndNumbers(t *testing.T) {
	t.Parallel()
	c := compile(t, sms(`{{upper .a}} {{lower .a}} [{{trim .b}}] {{join ", " .list}} {{if gt .n 2}}{{.n}} > 2{{end}} {{.f}}`))
	r, err := c.Render("", map[string]any{"a": "Ab", "b": "  x ", "list": []any{"p", "q"},
		"n": jsonNumber("3"), "f": jsonNumber("1.5")})
	if err != nil {
		t.Fatal(err)
	}
	if want := "AB ab [x] p, q 3 > 2 1.5"; r.SMS.Body != want {
		t.Errorf("rendered %q, want %q", r.SMS.Body, want)
	}
}

func TestRenderTimeCapStopsLoopsThatWriteNothing(t *testing.T) {
	t.Parallel()
	for name, tm := range map[string]herald.Template{
		"range over a huge number": sms("{{range 100000000000}}{{end}}done"),
		"nested ranges over data":  sms("{{range .l}}{{range $.l}}{{range $.l}}{{range $.l}}{{end}}{{end}}{{end}}{{end}}done"),
		"html": {TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "s",
			HTML: "<p>{{range .l}}{{range $.l}}{{range $.l}}{{range $.l}}{{end}}{{end}}{{end}}{{end}}</p>"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := tmpl.Compile(tm, tmpl.Limits{RenderTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Render("", map[string]any{"l": make([]any, 1000)})
			if msg := fields(t, err)["template"]; !strings.Contains(msg, "took longer than 100ms") {
				t.Errorf("error = %v, want the time cap", err)
			}
		})
	}
}

func TestRenderOutputCap(t *testing.T) {
	t.Parallel()
	c, err := tmpl.Compile(sms("{{range .n}}0123456789{{end}}"), tmpl.Limits{MaxOutputBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Render("", map[string]any{"n": jsonNumber("100")}); err != nil {
		t.Fatalf("1,000 bytes: %v", err)
	}
	_, err = c.Render("", map[string]any{"n": jsonNumber("10000000000")})
	if msg := fields(t, err)["template"]; !strings.Contains(msg, "sms.text renders more than 1000 bytes") {
		t.Errorf("error = %v, want the size cap", err)
	}
}

func TestRenderTotalCap(t *testing.T) {
	t.Parallel()
	data := map[string]string{}
	for i := range 10 {
		data[itoa(i)] = "{{range .n}}0123456789{{end}}"
	}
	c, err := tmpl.Compile(herald.Template{TemplateParts: herald.TemplateParts{Push: &herald.PushParts{Title: "t", Data: data}}},
		tmpl.Limits{MaxOutputBytes: 1000, MaxTotalBytes: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Render("", map[string]any{"n": jsonNumber("40")}); err != nil {
		t.Fatalf("10 parts of 400 bytes: %v", err)
	}
	_, err = c.Render("", map[string]any{"n": jsonNumber("60")}) // each part fits, all of them do not
	if msg := fields(t, err)["template"]; !strings.Contains(msg, "more than 5000 bytes together") {
		t.Errorf("error = %v, want the total cap", err)
	}
}

func TestRangesStillWork(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "s",
		HTML: `<ul>{{range $i, $e := .items}}<li>{{$i}}:{{$e.name}}</li>{{else}}none{{end}}</ul><script>var x = [{{range .items}}{{.name}},{{end}}];</script>`}}})
	r, err := c.Render("", map[string]any{"items": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<ul><li>0:a</li><li>1:b</li></ul><script>var x = ["a","b",];</script>`; r.Email.HTML != want {
		t.Errorf("html = %s, want %s", r.Email.HTML, want)
	}
}

func TestVariantFallsBackByLanguageThenAppDefaultThenBase(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{
		TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "Hi"}, Push: &herald.PushParts{Title: "Hi"}},
		Locales: map[string]herald.TemplateParts{
			"de":    {SMS: &herald.SMSParts{Text: "Hallo"}},
			"pt-BR": {SMS: &herald.SMSParts{Text: "Olá"}},
			"fr":    {SMS: &herald.SMSParts{Text: "Salut"}},
		}})
	for _, tt := range []struct{ locale, appDefault, want string }{
		{"de", "", "de"}, {"de-AT", "", "de"}, {"DE-at", "", "de"}, {"pt-br", "", "pt-BR"},
		{"pt-PT", "", ""}, {"it", "fr", "fr"}, {"", "fr-CA", "fr"}, {"it", "", ""}, {"", "", ""},
	} {
		if got := c.Variant(tt.locale, tt.appDefault); got != tt.want {
			t.Errorf("Variant(%q, %q) = %q, want %q", tt.locale, tt.appDefault, got, tt.want)
		}
	}
	r, err := c.Render("de", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.SMS.Body != "Hallo" || r.Push == nil || r.Push.Title != "Hi" {
		t.Errorf("de renders %+v %+v: its own sms, the base push", r.SMS, r.Push)
	}
}

func TestEmptyRenderingIsRefused(t *testing.T) {
	t.Parallel()
	c := compile(t, sms("{{.text}}"))
	_, err := c.Render("", map[string]any{"text": "  "})
	if msg := fields(t, err)["data"]; !strings.Contains(msg, "sms.text renders empty") {
		t.Errorf("error = %v", err)
	}
}

func TestConcurrentRendersShareNothing(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "{{.n}}",
		HTML: "<p>{{range .l}}{{.}}{{end}}</p>"}}})
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			r, err := c.Render("", map[string]any{"n": i, "l": []any{i, i}})
			if err == nil && r.Email.Subject != itoa(i) {
				err = errors.New("subject " + r.Email.Subject + " for render " + itoa(i))
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestPushPartsRenderIntoEachField(t *testing.T) {
	t.Parallel()
	c := compile(t, herald.Template{TemplateParts: herald.TemplateParts{Push: &herald.PushParts{
		Title: "Order {{.id}}", Body: "{{.items}} items", URL: " https://shop.example/o/{{.id}} ",
		Icon: "https://shop.example/{{.brand}}.png", Data: map[string]string{"order": "{{.id}}", "kind": "shipped"}}}})
	r, err := c.Render("", map[string]any{"id": jsonNumber("42"), "items": jsonNumber("3"), "brand": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	want := herald.Content{Title: "Order 42", Body: "3 items", URL: "https://shop.example/o/42",
		Icon: "https://shop.example/acme.png", Data: map[string]string{"order": "42", "kind": "shipped"}}
	if got := *r.Push; got.Title != want.Title || got.Body != want.Body || got.URL != want.URL || got.Icon != want.Icon ||
		len(got.Data) != 2 || got.Data["order"] != "42" || got.Data["kind"] != "shipped" {
		t.Errorf("push = %+v, want %+v", got, want)
	}
	if r.Email != nil || r.SMS != nil {
		t.Errorf("channels without parts rendered: %+v", r)
	}
}

package tmpl_test

import (
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tmpl"
)

// BenchmarkRenderEmail renders a typical email (subject, an HTML part with
// a loop, a text part): the cost a templated send adds per locale variant.
func BenchmarkRenderEmail(b *testing.B) {
	c, err := tmpl.Compile(herald.Template{Name: "receipt", TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{
		Subject: "Your receipt {{.order}}",
		HTML: `<html><body><h1>Thanks, {{.name}}</h1><table>{{range .items}}<tr><td>{{.name}}</td><td>{{.price}}</td></tr>{{end}}</table>` +
			`<a href="https://shop.example/o/{{.order}}">View order</a></body></html>`,
		Text: "Thanks, {{.name}}\n{{range .items}}- {{.name}}: {{.price}}\n{{end}}",
	}}}, tmpl.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"name": "Ada", "order": "A-42", "items": []any{
		map[string]any{"name": "Tea", "price": "4.00"}, map[string]any{"name": "Scones", "price": "6.50"},
		map[string]any{"name": "Jam", "price": "3.20"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Render("", data); err != nil {
			b.Fatal(err)
		}
	}
}

package sendgridfake

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/heraldhq/herald/internal/provider/providertest/specs"
)

// TestBodySchemaAsStrictAsKinOpenAPI checks that the body schema compiled
// once accepts and rejects exactly what kin-openapi's per-request request
// validation does.
func TestBodySchemaAsStrictAsKinOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(specs.SendGridMail)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := compileBodies(doc)
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]openapi3.StringFormatValidator{
		"email": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
	}
	const to = `"personalizations":[{"to":[{"email":"ada@example.com"}]}]`
	const from = `"from":{"email":"a@example.com","name":"A"}`
	const content = `"content":[{"type":"text/plain","value":"x"}]`
	cases := []struct{ name, contentType, body string }{
		{"valid", "application/json", `{` + to + `,` + from + `,"subject":"x",` + content + `}`},
		{"valid with charset", "application/json; charset=utf-8", `{` + to + `,` + from + `,"subject":"x",` + content + `}`},
		{"valid, every field Herald sends", "application/json", `{"personalizations":[{"to":[{"email":"ada@example.com","name":"Ada"}],"custom_args":{"herald_delivery_id":"d1"},"headers":{"X-A":"b"}}],` + from + `,"subject":"Hi",` +
			`"content":[{"type":"text/plain","value":"Hi"},{"type":"text/html","value":"<p>Hi</p>"}],"categories":["marketing"],"headers":{"List-Unsubscribe":"<https://h.example/u>"},"reply_to":{"email":"r@example.com"}}`},
		{"no from", "application/json", `{` + to + `,"subject":"x",` + content + `}`},
		{"no personalizations", "application/json", `{` + from + `,"subject":"x",` + content + `}`},
		{"valid per the spec: empty personalizations", "application/json", `{"personalizations":[],` + from + `,"subject":"x",` + content + `}`},
		{"bad to email", "application/json", `{"personalizations":[{"to":[{"email":"not an address"}]}],` + from + `,"subject":"x",` + content + `}`},
		{"bad from email", "application/json", `{` + to + `,"from":{"email":"nope"},"subject":"x",` + content + `}`},
		{"email not a string", "application/json", `{"personalizations":[{"to":[{"email":7}]}],` + from + `,"subject":"x",` + content + `}`},
		{"empty content value", "application/json", `{` + to + `,` + from + `,"subject":"x","content":[{"type":"text/plain","value":""}]}`},
		{"empty subject", "application/json", `{` + to + `,` + from + `,"subject":"",` + content + `}`},
		{"subject a number", "application/json", `{` + to + `,` + from + `,"subject":1,` + content + `}`},
		{"categories not strings", "application/json", `{` + to + `,` + from + `,"subject":"x",` + content + `,"categories":[1]}`},
		{"valid per the spec: unknown property", "application/json", `{` + to + `,` + from + `,"subject":"x",` + content + `,"surprise":true}`},
		{"send_at a string", "application/json", `{` + to + `,` + from + `,"subject":"x",` + content + `,"send_at":"soon"}`},
		{"not an object", "application/json", `[1,2]`},
		{"not JSON", "application/json", `{"personalizations":`},
		{"wrong content type", "text/plain", `{` + to + `,` + from + `,"subject":"x",` + content + `}`},
		{"valid per the spec: no body", "application/json", ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "https://fake/v3/mail/send", bytes.NewReader([]byte(tc.body)))
			req.Header.Set("Content-Type", tc.contentType)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			// kin-openapi's whole validation, body schema compiled for this request.
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
					SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidators(formats)}}}
			kinErr := openapi3filter.ValidateRequest(context.Background(), in)
			_, _ = io.Copy(io.Discard, req.Body)
			problems := bodies[route.Operation].check(tc.contentType, []byte(tc.body))
			if wantValid := strings.HasPrefix(tc.name, "valid"); (kinErr == nil) != wantValid {
				t.Errorf("kin-openapi: %v, want valid %v", kinErr, wantValid)
			}
			if (kinErr != nil) != (len(problems) > 0) {
				t.Errorf("kin-openapi says %v; the compiled schema says %q", kinErr, problems)
			}
		})
	}
}

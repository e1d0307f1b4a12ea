package client_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/docs"
)

// TestTypesMatchOpenAPI checks every request and answer type of the
// client against its operation in docs/openapi.yaml, by path and method:
// each JSON field of the type must be a property of the schema, of a
// compatible type, and each property the schema requires must be a field
// of the type. A renamed or dropped field on either side fails here.
func TestTypesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	const req = 0 // status 0: the request body
	for _, tt := range []struct {
		method, path string
		status       int
		value        any
	}{
		{"POST", "/v1/notifications", req, client.SendRequest{}},
		{"POST", "/v1/notifications", 202, client.Accepted{}},
		{"GET", "/v1/notifications", 200, client.NotificationList{}},
		{"GET", "/v1/notifications/{id}", 200, client.Notification{}},
		{"DELETE", "/v1/notifications/{id}", 200, client.Notification{}},
		{"PUT", "/v1/users/{user_id}", req, client.PutUserRequest{}},
		{"PUT", "/v1/users/{user_id}", 200, client.User{}},
		{"PUT", "/v1/users/{user_id}", 201, client.User{}},
		{"GET", "/v1/users/{user_id}", 200, client.User{}},
		{"POST", "/v1/users/import", 200, client.ImportResult{}},
		{"POST", "/v1/users/{user_id}/devices", req, client.AddDeviceRequest{}},
		{"POST", "/v1/users/{user_id}/devices", 201, client.Device{}},
		{"GET", "/v1/users/{user_id}/devices", 200, client.DeviceList{}},
		{"GET", "/v1/users/{user_id}/preferences", 200, client.Preferences{}},
		{"PUT", "/v1/users/{user_id}/preferences", req, client.Preferences{}},
		{"PUT", "/v1/users/{user_id}/preferences", 200, client.Preferences{}},
		{"PUT", "/v1/templates/{name}", req, client.PutTemplateRequest{}},
		{"PUT", "/v1/templates/{name}", 201, client.Template{}},
		{"GET", "/v1/templates/{name}", 200, client.Template{}},
		{"GET", "/v1/templates", 200, client.TemplateList{}},
		{"POST", "/v1/templates/{name}/preview", req, client.PreviewRequest{}},
		{"POST", "/v1/templates/{name}/preview", 200, client.Preview{}},
		{"PUT", "/v1/topics/{name}/subscribers", req, client.PutSubscribersRequest{}},
		{"PUT", "/v1/topics/{name}/subscribers", 200, client.Topic{}},
		{"GET", "/v1/topics/{name}", 200, client.Topic{}},
		{"GET", "/v1/dead-letters", 200, client.DeadLetterList{}},
		{"POST", "/v1/dead-letters/{delivery_id}/replay", 202, client.Delivery{}},
		{"POST", "/v1/keys", req, client.CreateKeyRequest{}},
		{"POST", "/v1/keys", 201, client.NewKey{}},
		{"GET", "/v1/keys", 200, client.KeyList{}},
		{"POST", "/v1/keys/{id}/rotate", req, client.RotateKeyRequest{}},
		{"POST", "/v1/keys/{id}/rotate", 201, client.NewKey{}},
		{"POST", "/v1/webhooks", req, client.CreateWebhookRequest{}},
		{"POST", "/v1/webhooks", 201, client.Webhook{}},
		{"GET", "/v1/webhooks", 200, client.WebhookList{}},
		{"PUT", "/v1/providers/{channel}", req, []client.ProviderEntry{}},
		{"PUT", "/v1/providers/{channel}", 200, client.ProviderList{}},
		{"GET", "/v1/app", 200, client.App{}},
		{"PUT", "/v1/app", req, client.PutAppRequest{}},
		{"PUT", "/v1/app", 200, client.App{}},
	} {
		side := fmt.Sprint(tt.status)
		if tt.status == req {
			side = "request"
		}
		t.Run(tt.method+" "+tt.path+" "+side, func(t *testing.T) {
			schema := operationSchema(doc, tt.method, tt.path, tt.status)
			if schema == nil {
				t.Fatalf("docs/openapi.yaml has no JSON body for %s %s %s", tt.method, tt.path, side)
			}
			for _, p := range drift(reflect.TypeOf(tt.value), schema, "") {
				t.Error(p.msg)
			}
		})
	}
	t.Run("Problem", func(t *testing.T) {
		for _, p := range drift(reflect.TypeOf(client.Problem{}), doc.Components.Schemas["Problem"], "") {
			t.Error(p.msg)
		}
	})
}

// TestDriftIsFound keeps the checker honest: a type with a field the
// schema lacks, one lacking a required property, and one of the wrong
// type are each reported.
func TestDriftIsFound(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	type renamed struct {
		ID        string         `json:"id"`
		Mail      string         `json:"mail"`
		Attrs     map[string]any `json:"attributes"`
		CreatedAt time.Time      `json:"created_at"`
		UpdatedAt time.Time      `json:"updated_at"`
	}
	type missing struct {
		ID        string         `json:"id"`
		Attrs     map[string]any `json:"attributes"`
		UpdatedAt time.Time      `json:"updated_at"`
	}
	type wrongType struct {
		ID        int            `json:"id"`
		Attrs     map[string]any `json:"attributes"`
		CreatedAt time.Time      `json:"created_at"`
		UpdatedAt time.Time      `json:"updated_at"`
	}
	user := operationSchema(doc, "GET", "/v1/users/{user_id}", 200)
	for _, tt := range []struct {
		value any
		want  string
	}{
		{renamed{}, "mail"},
		{missing{}, "created_at"},
		{wrongType{}, "id"},
	} {
		got := drift(reflect.TypeOf(tt.value), user, "")
		if len(got) != 1 || !strings.Contains(got[0].msg, tt.want) {
			t.Errorf("%T: drift = %+v, want one naming %q", tt.value, got, tt.want)
		}
	}
}

// operationSchema is the JSON schema of an operation's request body
// (status 0) or of its answer with status; nil when there is none.
func operationSchema(doc *openapi3.T, method, path string, status int) *openapi3.SchemaRef {
	item := doc.Paths.Find(path)
	if item == nil {
		return nil
	}
	op := item.GetOperation(method)
	if op == nil {
		return nil
	}
	var content openapi3.Content
	if status == 0 {
		if op.RequestBody == nil || op.RequestBody.Value == nil {
			return nil
		}
		content = op.RequestBody.Value.Content
	} else {
		r := op.Responses.Status(status)
		if r == nil || r.Value == nil {
			return nil
		}
		content = r.Value.Content
	}
	if mt := content.Get("application/json"); mt != nil {
		return mt.Schema
	}
	return nil
}

type problem struct{ where, msg string }

var timeType = reflect.TypeOf(time.Time{})

// drift compares type t with schema s and returns what disagrees; where
// names the place, as "Schema.member" when s is a named component.
func drift(t reflect.Type, s *openapi3.SchemaRef, at string) []problem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s == nil || s.Value == nil {
		return nil
	}
	name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	v := s.Value
	where := func(member string) string {
		if name != "" {
			return name + "." + member
		}
		return at + "." + member
	}
	var out []problem
	bad := func(member, format string, args ...any) {
		out = append(out, problem{where(member), fmt.Sprintf("%s (%s): %s", strings.TrimPrefix(at+"."+member, "."), where(member), fmt.Sprintf(format, args...))})
	}
	want := ""
	switch {
	case t == timeType:
		want = "string"
	case t.Kind() == reflect.String:
		want = "string"
	case t.Kind() == reflect.Bool:
		want = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "number"
	case t.Kind() == reflect.Slice:
		want = "array"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		want = "object"
	}
	if want != "" && v.Type != nil && !v.Type.IsEmpty() && !v.Type.Permits(want) && !(want == "integer" && v.Type.Permits("number")) {
		out = append(out, problem{at, fmt.Sprintf("%s: the client has %s, the schema %v", strings.TrimPrefix(at, "."), want, v.Type.Slice())})
		return out
	}
	switch {
	case t == timeType:
	case t.Kind() == reflect.Slice:
		out = append(out, drift(t.Elem(), v.Items, at+"[]")...)
	case t.Kind() == reflect.Map:
		if v.AdditionalProperties.Schema != nil {
			out = append(out, drift(t.Elem(), v.AdditionalProperties.Schema, at+".*")...)
		}
	case t.Kind() == reflect.Struct:
		var fields []string
		for f := range t.Fields() {
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if !f.IsExported() || tag == "-" || tag == "" {
				continue
			}
			fields = append(fields, tag)
			prop, ok := v.Properties[tag]
			if !ok {
				bad(tag, "the client has it, the schema does not")
				continue
			}
			out = append(out, drift(f.Type, prop, at+"."+tag)...)
		}
		for _, r := range v.Required {
			if !slices.Contains(fields, r) {
				bad(r, "the schema requires it, the client lacks it")
			}
		}
	}
	return out
}

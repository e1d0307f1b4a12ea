package twiliofake

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/heraldhq/herald/internal/provider/providertest/specs"
)

// schemaRef begins every reference to a component schema in the document.
const schemaRef = `"#/components/schemas/`

// messagesRouter loads Twilio's official API description and returns a
// router over its Messages path. The JSON is cut to that path and the
// schemas it references, unchanged, before kin-openapi loads it: loading
// the whole 1.8 MB document takes seconds under the race detector, for
// every fake. Routes are matched by path alone (the document's servers
// name api.twilio.com), so the fake serves them from any host.
func messagesRouter() (routers.Router, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(specs.TwilioAPI, &doc); err != nil {
		return nil, err
	}
	var paths map[string]json.RawMessage
	if err := json.Unmarshal(doc["paths"], &paths); err != nil {
		return nil, err
	}
	var components struct {
		SecuritySchemes json.RawMessage            `json:"securitySchemes"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal(doc["components"], &components); err != nil {
		return nil, err
	}
	item, ok := paths[messagesPath]
	if !ok {
		return nil, fmt.Errorf("no path %s", messagesPath)
	}

	keep := map[string]json.RawMessage{}
	queue := []json.RawMessage{item}
	for len(queue) > 0 {
		raw := string(queue[0])
		queue = queue[1:]
		for {
			i := strings.Index(raw, schemaRef)
			if i < 0 {
				break
			}
			raw = raw[i+len(schemaRef):]
			name := raw[:strings.IndexByte(raw, '"')]
			if _, seen := keep[name]; seen {
				continue
			}
			schema, ok := components.Schemas[name]
			if !ok {
				return nil, fmt.Errorf("no schema %s", name)
			}
			keep[name] = schema
			queue = append(queue, schema)
		}
	}

	cut := map[string]any{
		"openapi":    doc["openapi"],
		"info":       doc["info"],
		"security":   doc["security"],
		"paths":      map[string]json.RawMessage{messagesPath: item},
		"components": map[string]any{"securitySchemes": components.SecuritySchemes, "schemas": keep},
	}
	data, err := json.Marshal(cut)
	if err != nil {
		return nil, err
	}
	loaded, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, err
	}
	op := loaded.Paths.Value(messagesPath)
	if op == nil || op.Post == nil || op.Post.OperationID != "CreateMessage" {
		return nil, fmt.Errorf("no CreateMessage operation at %s", messagesPath)
	}
	// The list operation (GET) carries examples that break their own
	// schemas; the fake serves only CreateMessage.
	op.Get = nil
	return legacy.NewRouter(loaded, openapi3.DisableExamplesValidation())
}

// Package docs embeds Herald's OpenAPI document, served at /openapi.yaml
// and used by tests to check every response the API gives.
package docs

import _ "embed" // for the go:embed directive

// OpenAPI is docs/openapi.yaml. Callers must treat it as read-only.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Package settings decodes a provider entry's settings the same way for
// every provider kind: strictly, naming the offending field, and never
// quoting the input, which holds credentials.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
)

// Decode parses raw into dst (a pointer to the kind's settings struct).
// Empty settings leave dst as it is. An unknown or mistyped field is a
// CodeInvalid error naming "settings.<field>".
func Decode(raw json.RawMessage, dst any, kind string) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data after the settings object")
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return herald.Invalid("settings."+typeErr.Field, "must be a "+typeErr.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return herald.Invalid("settings."+name, "is not a setting of the "+kind+" provider")
	}
	// A syntax error's text may quote the input, which holds credentials: leave it out.
	return herald.Invalid("settings", "must be a JSON object")
}

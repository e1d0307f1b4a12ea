package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
)

// decode reads the JSON body into dst, a request struct (never a domain
// type, so that the wire shape is explicit). Syntax errors, an empty or
// null body and trailing data are CodeMalformed (400); an unknown field, a
// value of the wrong type and text with a NUL character are CodeInvalid
// (422) naming the field; a body over the limit is CodeTooLarge.
func (s *server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	// The body is read into a pooled buffer: decoding copies every value
	// it keeps (strings, json.RawMessage), so nothing refers to it after.
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody))
	data := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return herald.Errorf(herald.CodeTooLarge, "the request body is larger than %d bytes", mbe.Limit)
		}
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body could not be read", Err: err}
	}
	return decodeJSON(data, dst)
}

// decodeJSON is decode without the HTTP: one JSON value, nothing after it.
func decodeJSON(data []byte, dst any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return herald.Errorf(herald.CodeMalformed, "the request body is empty; a JSON value is expected")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body is null; a JSON object or array is expected",
			Fields: []herald.FieldError{{Field: "body", Message: "must not be null"}}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber() // free-form values (attributes) keep their exact numbers
	if err := dec.Decode(dst); err != nil {
		return decodeError(data, dst, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return herald.Errorf(herald.CodeMalformed, "the request body has data after its JSON value")
	}
	if field, ok := findNUL(data); ok {
		// Text with NUL cannot be stored (PostgreSQL refuses it) nor sent.
		return herald.Invalid(orRoot(field), "must not contain the NUL character (\\u0000)")
	}
	return nil
}

// findNUL reports whether any string or member name in the JSON document
// holds U+0000, and where.
func findNUL(data []byte) (string, bool) {
	if !bytes.Contains(data, []byte(`\u0000`)) && !bytes.Contains(data, []byte{0}) {
		return "", false
	}
	var v any
	if json.Unmarshal(data, &v) != nil {
		return "", true
	}
	return nulPath(v, "")
}

func nulPath(v any, path string) (string, bool) {
	switch v := v.(type) {
	case string:
		return path, strings.ContainsRune(v, 0)
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if strings.ContainsRune(k, 0) {
				return path, true
			}
			if p, ok := nulPath(v[k], join(path, k)); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range v {
			if p, ok := nulPath(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

func decodeError(data []byte, dst any, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &herald.Error{Code: herald.CodeMalformed,
			Message: fmt.Sprintf("the request body is not valid JSON (at byte %d)", syn.Offset), Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body ends in the middle of its JSON value", Err: err}
	}
	field, msg := locate(data, reflect.TypeOf(dst))
	if field == "" && errors.As(err, &typ) {
		field, msg = typ.Field, "must be "+jsonKind(typ.Type)
	}
	if field == "" && strings.HasPrefix(err.Error(), "json: unknown field ") {
		field, msg = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field"
	}
	if field == "" && msg == "" {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body does not have the expected shape", Err: err}
	}
	if field == "" {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body " + msg, Err: err}
	}
	// Well-formed JSON with a field Herald does not take: an invalid field.
	return &herald.Error{Code: herald.CodeInvalid, Message: "the request has invalid fields",
		Fields: []herald.FieldError{{Field: field, Message: msg}}, Err: err}
}

// locate finds the first place in the JSON document that the Go type t
// does not accept (an unknown member or a value of the wrong kind) and
// returns its JSON path ("to[0].email") with a message. encoding/json
// reports neither array indices nor the path of an unknown field, and the
// API promises field paths.
func locate(data []byte, t reflect.Type) (field, msg string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return "", ""
	}
	return walk(v, t, "")
}

func walk(v any, t reflect.Type, path string) (string, string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || t == reflect.TypeFor[json.Number]() || t.Kind() == reflect.Interface ||
		reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return "", ""
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return orRoot(path), "must be an object"
		}
		for _, key := range sortedKeys(obj) {
			f, ok := fieldByJSONName(t, key)
			if !ok {
				return join(path, key), "is not a known field"
			}
			if p, m := walk(obj[key], f.Type, join(path, key)); p != "" {
				return p, m
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return orRoot(path), "must be an object"
		}
		for _, key := range sortedKeys(obj) {
			if p, m := walk(obj[key], t.Elem(), join(path, key)); p != "" {
				return p, m
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				return orRoot(path), "must be a base64 string"
			}
			return "", ""
		}
		arr, ok := v.([]any)
		if !ok {
			return orRoot(path), "must be an array"
		}
		for i, e := range arr {
			if p, m := walk(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p, m
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return orRoot(path), "must be a string"
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return orRoot(path), "must be a boolean"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return orRoot(path), "must be an integer"
		}
		if f, err := n.Float64(); err != nil || f != math.Trunc(f) {
			return orRoot(path), "must be an integer"
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return orRoot(path), "must be a number"
		}
	}
	return "", ""
}

// fieldByJSONName matches a member name to a struct field the way
// encoding/json does: by the tag name, case-insensitively.
func fieldByJSONName(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Document order is lost in a map; sorted order at least makes the
	// reported field deterministic.
	slices.Sort(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// orRoot names the whole body when the offending value is the body itself.
func orRoot(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

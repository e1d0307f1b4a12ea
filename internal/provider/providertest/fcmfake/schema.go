package fcmfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/provider/providertest/specs"
)

// Limits FCM documents for the payload (PROVIDERS.md §2.3).
const (
	maxPayload      = 4096
	maxTopicPayload = 2048
	maxTTLSeconds   = 2419200
)

// property is a schema or property of a Google discovery document.
type property struct {
	Type                 string               `json:"type"`
	Ref                  string               `json:"$ref"`
	Format               string               `json:"format"`
	Enum                 []string             `json:"enum"`
	Items                *property            `json:"items"`
	AdditionalProperties *property            `json:"additionalProperties"`
	Properties           map[string]*property `json:"properties"`
}

// schemaSet is the "schemas" of the FCM discovery document.
type schemaSet struct {
	schemas map[string]*property
}

func loadSchema() (*schemaSet, error) {
	var doc struct {
		Schemas map[string]*property `json:"schemas"`
	}
	if err := json.Unmarshal(specs.FCM, &doc); err != nil {
		return nil, fmt.Errorf("parse the FCM discovery document: %w", err)
	}
	for _, name := range []string{"SendMessageRequest", "Message", "AndroidConfig", "ApnsConfig", "WebpushConfig", "Notification"} {
		if doc.Schemas[name] == nil {
			return nil, fmt.Errorf("the FCM discovery document has no %s schema", name)
		}
	}
	return &schemaSet{schemas: doc.Schemas}, nil
}

// fieldError is a rejected request: Google's message and the field path.
type fieldError struct {
	field string
	msg   string
}

// sendRequest is what the handler needs from a valid request.
type sendRequest struct {
	token        string
	validateOnly bool
}

// validateRequest checks body as Google does: JSON names known to the
// discovery schema (lowerCamelCase or the proto's snake_case), the JSON type
// of every value, enums and formats; then FCM's own rules.
func (s *schemaSet) validateRequest(body []byte) (sendRequest, *fieldError) {
	var req sendRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return req, &fieldError{msg: "Invalid JSON payload received. Unexpected token."}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, &fieldError{msg: "Invalid JSON payload received. Unexpected token after the end of the object."}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return req, &fieldError{msg: "Invalid JSON payload received. Expected an object."}
	}
	if err := s.object(s.schemas["SendMessageRequest"], top, ""); err != nil {
		return req, err
	}
	if b, ok := field(top, "validateOnly").(bool); ok {
		req.validateOnly = b
	}
	msg, _ := field(top, "message").(map[string]any)
	if msg == nil {
		return req, &fieldError{field: "message", msg: "Request contains an invalid argument: message is required."}
	}
	return req, rules(msg, &req)
}

// field returns obj's value for the discovery name, given in either JSON form.
func field(obj map[string]any, camel string) any {
	if v, ok := obj[camel]; ok {
		return v
	}
	return obj[snake(camel)]
}

func (s *schemaSet) object(sc *property, obj map[string]any, path string) *fieldError {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same request always gets the same first error
	for _, k := range keys {
		p := sc.Properties[k]
		if p == nil {
			p = sc.Properties[camel(k)]
		}
		if p == nil {
			at := ""
			if path != "" {
				at = fmt.Sprintf(" at '%s'", path)
			}
			return &fieldError{field: join(path, k), msg: fmt.Sprintf("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", k, at)}
		}
		if err := s.value(p, obj[k], join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (s *schemaSet) value(p *property, v any, path string) *fieldError {
	if v == nil {
		return nil // JSON null is the field's default in proto3 JSON
	}
	bad := func(kind string) *fieldError {
		b, _ := json.Marshal(v)
		return &fieldError{field: path, msg: fmt.Sprintf("Invalid value at '%s' (%s), %s", path, kind, b)}
	}
	if p.Ref != "" {
		sc := s.schemas[p.Ref]
		obj, ok := v.(map[string]any)
		if sc == nil || !ok {
			return bad("type.googleapis.com/google.firebase.fcm.v1." + p.Ref)
		}
		return s.object(sc, obj, path)
	}
	switch p.Type {
	case "any":
		return nil
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("TYPE_STRING")
		}
		if len(p.Enum) > 0 && !contains(p.Enum, str) {
			return bad("TYPE_ENUM")
		}
		switch p.Format {
		case "google-duration":
			if _, ok := parseDuration(str); !ok {
				return &fieldError{field: path, msg: fmt.Sprintf("Invalid value at '%s' (type.googleapis.com/google.protobuf.Duration), Field '%s', Illegal duration format; duration must end with 's'", path, path)}
			}
		case "google-datetime":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return bad("type.googleapis.com/google.protobuf.Timestamp")
			}
		}
		return nil
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("TYPE_BOOL")
		}
		return nil
	case "integer":
		var text string
		switch n := v.(type) {
		case json.Number:
			text = n.String()
		case string:
			text = n // proto3 JSON accepts quoted integers
		default:
			return bad("TYPE_INT32")
		}
		if _, err := strconv.ParseInt(text, 10, 32); err != nil {
			return bad("TYPE_INT32")
		}
		return nil
	case "number":
		switch n := v.(type) {
		case json.Number:
			if _, err := n.Float64(); err != nil {
				return bad("TYPE_FLOAT")
			}
		case string:
			if _, err := strconv.ParseFloat(n, 64); err != nil && n != "NaN" && n != "Infinity" && n != "-Infinity" {
				return bad("TYPE_FLOAT")
			}
		default:
			return bad("TYPE_FLOAT")
		}
		return nil
	case "array":
		arr, ok := v.([]any)
		if !ok || p.Items == nil {
			return bad("TYPE_ARRAY")
		}
		for i, item := range arr {
			if err := s.value(p.Items, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("TYPE_MESSAGE")
		}
		if p.AdditionalProperties == nil {
			return s.object(p, obj, path)
		}
		for k, item := range obj {
			if err := s.value(p.AdditionalProperties, item, fmt.Sprintf("%s[%s]", path, k)); err != nil {
				return err
			}
		}
		return nil
	}
	return bad("TYPE_UNKNOWN")
}

// rules checks what the schema cannot say (PROVIDERS.md §2.3).
func rules(msg map[string]any, req *sendRequest) *fieldError {
	invalid := func(field, format string, args ...any) *fieldError {
		return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
	}
	token, _ := field(msg, "token").(string)
	topic, _ := field(msg, "topic").(string)
	cond, _ := field(msg, "condition").(string)
	targets := 0
	for _, t := range []string{token, topic, cond} {
		if t != "" {
			targets++
		}
	}
	switch {
	case targets == 0:
		return invalid("message", "Recipient of the message is not set.")
	case targets > 1:
		return invalid("message", "Exactly one of message.token, message.topic or message.condition must be set.")
	case strings.HasPrefix(topic, "/topics/"):
		return invalid("message.topic", "Topic name must not start with /topics/.")
	}
	req.token = token

	size := 0
	if n, ok := field(msg, "notification").(map[string]any); ok {
		for _, k := range []string{"title", "body"} {
			s, _ := n[k].(string)
			size += len(s)
		}
	}
	android, _ := field(msg, "android").(map[string]any)
	for _, d := range []struct {
		path string
		m    any
	}{{"message.data", field(msg, "data")}, {"message.android.data", field(android, "data")}} {
		data, _ := d.m.(map[string]any)
		for k, v := range data {
			lk := strings.ToLower(k)
			if lk == "from" || lk == "message_type" || strings.HasPrefix(lk, "google") || strings.HasPrefix(lk, "gcm") {
				return invalid(d.path, "Invalid data payload key: %s", k)
			}
			s, _ := v.(string)
			size += len(k) + len(s)
		}
	}
	limit := maxPayload
	if topic != "" {
		limit = maxTopicPayload
	}
	if size > limit {
		return invalid("message", "Message is too big. Maximum payload size is %d bytes.", limit)
	}

	if ttl, ok := field(android, "ttl").(string); ok {
		if secs, _ := parseDuration(ttl); secs < 0 || secs > maxTTLSeconds {
			return invalid("message.android.ttl", "TTL must be between 0 and %d seconds.", maxTTLSeconds)
		}
	}
	if apns, ok := field(msg, "apns").(map[string]any); ok {
		headers, _ := field(apns, "headers").(map[string]any)
		for k, v := range headers {
			s, _ := v.(string)
			switch strings.ToLower(k) {
			case "apns-priority":
				if s != "1" && s != "5" && s != "10" {
					return invalid("message.apns.headers", "Invalid APNs header apns-priority: %q", s)
				}
			case "apns-collapse-id":
				if len(s) > 64 {
					return invalid("message.apns.headers", "apns-collapse-id must be at most 64 bytes")
				}
			case "apns-expiration":
				if _, err := strconv.ParseInt(s, 10, 64); err != nil {
					return invalid("message.apns.headers", "Invalid APNs header apns-expiration: %q", s)
				}
			}
		}
	}
	if wp, ok := field(msg, "webpush").(map[string]any); ok {
		opts, _ := field(wp, "fcmOptions").(map[string]any)
		if link, ok := opts["link"].(string); ok && !strings.HasPrefix(link, "https://") {
			return invalid("message.webpush.fcm_options.link", "The link must use HTTPS.")
		}
	}
	return nil
}

// parseDuration parses a protobuf Duration string ("3.5s") into whole
// seconds; ok is false when it is not one.
func parseDuration(s string) (int64, bool) {
	num, found := strings.CutSuffix(s, "s")
	if !found || num == "" {
		return 0, false
	}
	whole, frac, hasFrac := strings.Cut(strings.TrimPrefix(num, "-"), ".")
	if whole == "" || !digits(whole) || (hasFrac && (frac == "" || len(frac) > 9 || !digits(frac))) {
		return 0, false
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	if strings.HasPrefix(num, "-") {
		n = -n
	}
	return n, true
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// camel turns a proto field name (collapse_key) into its JSON name (collapseKey).
func camel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	var b strings.Builder
	up := false
	for _, r := range s {
		switch {
		case r == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// snake turns a JSON name (collapseKey) into the proto field name (collapse_key).
func snake(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

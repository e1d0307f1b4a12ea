package herald

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an Error. The HTTP layer maps each code to one status.
type Code string

// Error codes. Adapters translate driver errors into these.
const (
	CodeInvalid      Code = "invalid"      // a field is wrong: 422
	CodeMalformed    Code = "malformed"    // the body is not valid JSON of the right shape: 400
	CodeUnauthorized Code = "unauthorized" // no or bad credentials: 401
	CodeForbidden    Code = "forbidden"    // the credentials lack the scope: 403
	CodeNotFound     Code = "not_found"    // no such object in this app: 404
	CodeConflict     Code = "conflict"     // the request contradicts stored state: 409
	CodeTooLarge     Code = "too_large"    // the body is over the limit: 413
	CodeRateLimited  Code = "rate_limited" // slow down: 429
	CodeUnavailable  Code = "unavailable"  // a dependency is down: 503
	CodeInternal     Code = "internal"     // a bug or an unexpected failure: 500
)

// FieldError names one offending input by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one domain error type. It becomes problem+json in httpapi.
type Error struct {
	Code    Code
	Message string
	// Fields lists the offending inputs of a CodeInvalid or CodeMalformed error.
	Fields []FieldError
	// RetryAfterSeconds, when positive, tells the caller when to come back.
	RetryAfterSeconds int
	// Err is the underlying cause, kept for logs and errors.Is.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a CodeInvalid error naming one field.
func Invalid(field, message string) *Error {
	return &Error{Code: CodeInvalid, Message: "the request has invalid fields",
		Fields: []FieldError{{Field: field, Message: message}}}
}

// ErrNotFound is returned (wrapped) by stores when an object does not exist in the app.
var ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}

// ErrorCode returns the code of the first Error in err's chain, or CodeInternal.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsNotFound reports whether err carries CodeNotFound.
func IsNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }

// Validation gathers field errors and turns them into one Error.
type Validation struct{ fields []FieldError }

// Add records a problem with field.
func (v *Validation) Add(field, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was added, otherwise a CodeInvalid Error.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Message: "the request has invalid fields", Fields: v.fields}
}

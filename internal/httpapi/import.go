package httpapi

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// Bounds of POST /v1/users/import: a CSV of a few hundred thousand users,
// written in transactions of importBatch, and the first maxImportErrors
// bad rows listed (all are counted).
const (
	maxImportBytes  = 64 << 20
	importBatch     = 1000
	maxImportErrors = 100
)

type importResponse struct {
	Rows     int                 `json:"rows"`
	Imported int                 `json:"imported"`
	Created  int                 `json:"created"`
	Updated  int                 `json:"updated"`
	Failed   int                 `json:"failed"`
	Errors   []importRowResponse `json:"errors"`
}

// importRowResponse is one bad row: its line in the file (the header is
// line 1), the column and what is wrong.
type importRowResponse struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// importColumns are the columns a CSV may have besides attr.<name>.
var importColumns = []string{"user_id", "email", "phone", "locale", "timezone"}

// importUsers creates or updates the users of a CSV file (text/csv, a
// header line naming the columns: user_id, and any of email, phone,
// locale, timezone and attr.<name>). Good rows are written in batches; a
// bad row is skipped and reported by its line and column, so that one typo
// does not hold up a hundred thousand users. A user id twice in the file
// is an error at its second line.
func (s *server) importUsers(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != "text/csv" && mt != "application/csv") {
		return &herald.Error{Code: herald.CodeMalformed, Message: "send the users as CSV, with Content-Type: text/csv",
			Fields: []herald.FieldError{{Field: "Content-Type", Message: "must be text/csv"}}}
	}
	cr := csv.NewReader(http.MaxBytesReader(w, r.Body, maxImportBytes))
	cr.FieldsPerRecord = -1 // a short or long row is the row's error, not the file's
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return csvError(err, "the header line")
	}
	cols, err := importHeader(header)
	if err != nil {
		return err
	}
	out := importResponse{Errors: []importRowResponse{}}
	seen := make(map[string]int)
	batch := make([]herald.User, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		created, err := s.store.PutUsers(r.Context(), batch)
		if err != nil {
			return fmt.Errorf("httpapi: import users: %w", err)
		}
		out.Imported += len(batch)
		out.Created += created
		out.Updated += len(batch) - created
		batch = batch[:0]
		return nil
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return csvError(err, "the body")
			}
			// A broken quote leaves where the next row starts unknowable:
			// what came before stays imported, the rest is not read.
			out.Failed++
			out.Errors = append(out.Errors, importRowResponse{Line: pe.StartLine, Field: "row",
				Message: fmt.Sprintf("cannot be read (%v); this line and the rest of the file were not imported", pe.Err)})
			break
		}
		line, _ := cr.FieldPos(0)
		out.Rows++
		u, field, msg := importRow(cols, rec, caller.AppID)
		if field == "" {
			if first, dup := seen[u.ID]; dup {
				field, msg = "user_id", fmt.Sprintf("user %q is also on line %d", u.ID, first)
			} else {
				seen[u.ID] = line
			}
		}
		if field != "" {
			out.Failed++
			if len(out.Errors) < maxImportErrors {
				out.Errors = append(out.Errors, importRowResponse{Line: line, Field: field, Message: msg})
			}
			continue
		}
		batch = append(batch, u)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// csvError turns a read error into the client's error: too large, or not CSV.
func csvError(err error, where string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return herald.Errorf(herald.CodeTooLarge, "the CSV is larger than %d bytes; split it", mbe.Limit)
	}
	if errors.Is(err, io.EOF) {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the CSV is empty: a header line is expected",
			Fields: []herald.FieldError{{Field: "header", Message: "is missing"}}}
	}
	return &herald.Error{Code: herald.CodeMalformed, Message: fmt.Sprintf("the CSV cannot be read at %s: %v", where, err), Err: err}
}

// importHeader maps the columns; an unknown or repeated one, or no
// user_id, is a 422 naming it.
func importHeader(header []string) ([]string, error) {
	cols := make([]string, len(header))
	var v herald.Validation
	have := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		cols[i] = h
		switch {
		case have[h]:
			v.Add("header."+h, "the column is there twice")
		case strings.HasPrefix(h, "attr.") && len(h) > len("attr."):
		case !isImportColumn(h):
			v.Add("header."+h, "unknown column: use %s or attr.<name>", strings.Join(importColumns, ", "))
		}
		have[h] = true
	}
	if !have["user_id"] {
		v.Add("header", "a user_id column is required")
	}
	return cols, v.Err()
}

func isImportColumn(h string) bool {
	for _, c := range importColumns {
		if h == c {
			return true
		}
	}
	return false
}

// importRow reads one row with the checks of PUT /v1/users/{user_id};
// field and msg name the first problem.
func importRow(cols, rec []string, appID string) (u herald.User, field, msg string) {
	if len(rec) != len(cols) {
		return u, "row", fmt.Sprintf("has %d fields, the header %d", len(rec), len(cols))
	}
	u.AppID = appID
	for i, c := range cols {
		val := strings.TrimSpace(rec[i])
		switch {
		case c == "user_id":
			if !validUserID(val) {
				return u, c, fmt.Sprintf("must be 1 to %d printable characters without a slash", maxUserID)
			}
			u.ID = val
		case c == "email":
			if val != "" {
				if err := validate.Email(val); err != nil {
					return u, c, err.Error()
				}
			}
			u.Email = val
		case c == "phone":
			if val != "" {
				e164, err := validate.Phone(val)
				if err != nil {
					return u, c, err.Error()
				}
				val = e164
			}
			u.Phone = val
		case c == "locale":
			if err := validate.Locale(val); err != nil {
				return u, c, err.Error()
			}
			u.Locale = val
		case c == "timezone":
			if err := validate.Timezone(val); err != nil {
				return u, c, err.Error()
			}
			u.Timezone = val
		default: // attr.<name>
			if val == "" {
				continue
			}
			if !printable(val) {
				return u, c, "must be printable text"
			}
			if u.Attributes == nil {
				u.Attributes = map[string]any{}
			}
			u.Attributes[strings.TrimPrefix(c, "attr.")] = val
		}
	}
	return u, "", ""
}

package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// maxUserID bounds the app's own user ids, which appear in URLs and logs.
const maxUserID = 128

// validUserID accepts 1–128 printable characters without a slash, so that
// every id can sit in one path segment.
func validUserID(id string) bool {
	return id != "" && utf8.RuneCountInString(id) <= maxUserID && !strings.Contains(id, "/") && printable(id)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// pathUserID returns the {user_id} of the path; an id that cannot exist is
// answered like a missing user.
func pathUserID(r *http.Request) (string, error) {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		return "", herald.Errorf(herald.CodeNotFound, "no such user")
	}
	return id, nil
}

type putUserRequest struct {
	Email      string         `json:"email"`
	Phone      string         `json:"phone"`
	Locale     string         `json:"locale"`
	Timezone   string         `json:"timezone"`
	Attributes map[string]any `json:"attributes"`
}

type userResponse struct {
	ID         string         `json:"id"`
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Locale     string         `json:"locale,omitempty"`
	Timezone   string         `json:"timezone,omitempty"`
	Attributes map[string]any `json:"attributes"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

func toUserResponse(u herald.User) userResponse {
	attrs := u.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return userResponse{
		ID: u.ID, Email: u.Email, Phone: u.Phone, Locale: u.Locale, Timezone: u.Timezone,
		Attributes: attrs, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

// maxAttributesBytes bounds a user's attributes, which every send to the
// user reads: a profile, not a document store.
const maxAttributesBytes = 16 << 10

func (s *server) putUser(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var req putUserRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var v herald.Validation
	id := r.PathValue("user_id")
	if !validUserID(id) {
		v.Add("user_id", "must be 1 to %d printable characters without a slash", maxUserID)
	}
	if req.Email != "" {
		if err := validate.Email(req.Email); err != nil {
			v.Add("email", "%s", err.Error())
		}
	}
	if req.Phone != "" {
		e164, err := validate.Phone(req.Phone)
		if err != nil {
			v.Add("phone", "%s", err.Error())
		}
		req.Phone = e164
	}
	if err := validate.Locale(req.Locale); err != nil {
		v.Add("locale", "%s", err.Error())
	}
	if err := validate.Timezone(req.Timezone); err != nil {
		v.Add("timezone", "%s", err.Error())
	}
	if raw, _ := json.Marshal(req.Attributes); len(raw) > maxAttributesBytes {
		v.Add("attributes", "at most %d bytes of JSON", maxAttributesBytes)
	}
	if err := v.Err(); err != nil {
		return err
	}
	u, created, err := s.store.PutUser(r.Context(), herald.User{
		AppID: caller.AppID, ID: id, Email: req.Email, Phone: req.Phone,
		Locale: req.Locale, Timezone: req.Timezone, Attributes: req.Attributes,
	})
	if err != nil {
		return fmt.Errorf("httpapi: put user %q: %w", id, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.writeJSON(w, r, status, toUserResponse(u))
	return nil
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	id, err := pathUserID(r)
	if err != nil {
		return err
	}
	u, err := s.store.GetUser(r.Context(), caller.AppID, id)
	if err != nil {
		return fmt.Errorf("httpapi: get user %q: %w", id, err)
	}
	s.writeJSON(w, r, http.StatusOK, toUserResponse(u))
	return nil
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	id, err := pathUserID(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteUser(r.Context(), caller.AppID, id); err != nil {
		return fmt.Errorf("httpapi: delete user %q: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

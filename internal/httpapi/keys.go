package httpapi

import (
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
)

const maxKeyName = 100

// Bounds of POST /v1/keys and POST /v1/keys/{id}/rotate.
const (
	maxKeyLifetimeYears = 2
	defaultGraceSeconds = 86400
	maxGraceSeconds     = 30 * 86400
)

type createKeyRequest struct {
	Name      string  `json:"name"`
	Scope     string  `json:"scope"`
	ExpiresAt *string `json:"expires_at"`
}

type rotateKeyRequest struct {
	GracePeriodSeconds *int64 `json:"grace_period_seconds"`
}

type keyResponse struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Key         string     `json:"key"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
}

type keyListItem struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type keyListResponse struct {
	Data []keyListItem `json:"data"`
}

func (s *server) createKey(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var req createKeyRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	now := s.now().UTC()
	var v herald.Validation
	if req.Name == "" || utf8.RuneCountInString(req.Name) > maxKeyName || !printable(req.Name) {
		v.Add("name", "must be 1 to %d printable characters", maxKeyName)
	}
	if !herald.Scope(req.Scope).Valid() {
		v.Add("scope", "must be %q or %q", herald.ScopeAdmin, herald.ScopeSend)
	}
	var expires *time.Time
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		switch {
		case err != nil:
			v.Add("expires_at", "must be an RFC 3339 time, like 2027-01-31T00:00:00Z")
		case !t.After(now):
			v.Add("expires_at", "must be in the future")
		case t.After(now.AddDate(maxKeyLifetimeYears, 0, 0)):
			v.Add("expires_at", "must be within %d years", maxKeyLifetimeYears)
		default:
			t = t.UTC().Truncate(time.Microsecond)
			expires = &t
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	k, secret, err := s.newKey(caller.AppID, req.Name, herald.Scope(req.Scope), now)
	if err != nil {
		return err
	}
	k.ExpiresAt = expires
	if err := s.store.CreateKey(r.Context(), k); err != nil {
		return fmt.Errorf("httpapi: create key: %w", err)
	}
	s.writeJSON(w, r, http.StatusCreated, keyResponse{
		ID: k.ID, Name: k.Name, Scope: string(k.Scope), Key: secret, Prefix: k.Prefix, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
	})
	return nil
}

// newKey makes a key of the app, stored by its keyed hash, and returns it
// with the secret to show once.
func (s *server) newKey(appID, name string, scope herald.Scope, now time.Time) (herald.APIKey, string, error) {
	secret, prefix, err := apikey.New(scope)
	if err != nil {
		return herald.APIKey{}, "", err
	}
	hash := apikey.LegacyHash(secret)
	if s.hasher != nil {
		hash = s.hasher.Sum(secret)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return herald.APIKey{}, "", fmt.Errorf("httpapi: key id: %w", err)
	}
	return herald.APIKey{ID: id.String(), AppID: appID, Name: name, Scope: scope, Prefix: prefix, Hash: hash,
		CreatedAt: now.UTC().Truncate(time.Microsecond)}, secret, nil
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	keys, err := s.store.ListKeys(r.Context(), caller.AppID)
	if err != nil {
		return fmt.Errorf("httpapi: list keys: %w", err)
	}
	resp := keyListResponse{Data: make([]keyListItem, 0, len(keys))}
	for _, k := range keys {
		resp.Data = append(resp.Data, keyListItem{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix,
			CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt})
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// rotateKey makes a new key of the same name and scope and lets the old
// one live on for the grace period (never longer than it would have), so
// that clients can move to the new key without an outage.
func (s *server) rotateKey(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	id := r.PathValue("id")
	req := rotateKeyRequest{}
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &req); err != nil {
			return err
		}
	}
	grace := int64(defaultGraceSeconds)
	if req.GracePeriodSeconds != nil {
		grace = *req.GracePeriodSeconds
		if grace < 0 || grace > maxGraceSeconds {
			return herald.Invalid("grace_period_seconds", fmt.Sprintf("must be 0 to %d", maxGraceSeconds))
		}
	}
	old, err := s.store.GetKey(r.Context(), caller.AppID, id)
	if err != nil {
		return fmt.Errorf("httpapi: rotate key %q: %w", id, err)
	}
	now := s.now().UTC()
	next, secret, err := s.newKey(caller.AppID, old.Name, old.Scope, now)
	if err != nil {
		return err
	}
	if err := s.store.RotateKey(r.Context(), caller.AppID, id, next, now.Add(time.Duration(grace)*time.Second)); err != nil {
		return fmt.Errorf("httpapi: rotate key %q: %w", id, err)
	}
	s.writeJSON(w, r, http.StatusCreated, keyResponse{
		ID: next.ID, Name: next.Name, Scope: string(next.Scope), Key: secret, Prefix: next.Prefix, CreatedAt: next.CreatedAt,
		ExpiresAt: next.ExpiresAt, RotatedFrom: old.ID,
	})
	return nil
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	id := r.PathValue("id")
	if err := s.store.RevokeKey(r.Context(), caller.AppID, id, s.now().UTC()); err != nil {
		return fmt.Errorf("httpapi: revoke key %q: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

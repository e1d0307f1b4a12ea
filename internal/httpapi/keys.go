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

type createKeyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

type keyResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Key       string    `json:"key"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *server) createKey(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var req createKeyRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var v herald.Validation
	if req.Name == "" || utf8.RuneCountInString(req.Name) > maxKeyName || !printable(req.Name) {
		v.Add("name", "must be 1 to %d printable characters", maxKeyName)
	}
	if !herald.Scope(req.Scope).Valid() {
		v.Add("scope", "must be %q or %q", herald.ScopeAdmin, herald.ScopeSend)
	}
	if err := v.Err(); err != nil {
		return err
	}
	secret, prefix, hash, err := apikey.Generate(herald.Scope(req.Scope))
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("httpapi: key id: %w", err)
	}
	k := herald.APIKey{
		ID:        id.String(),
		AppID:     caller.AppID,
		Name:      req.Name,
		Scope:     herald.Scope(req.Scope),
		Prefix:    prefix,
		Hash:      hash,
		CreatedAt: s.now().UTC(),
	}
	if err := s.store.CreateKey(r.Context(), k); err != nil {
		return fmt.Errorf("httpapi: create key: %w", err)
	}
	s.writeJSON(w, r, http.StatusCreated, keyResponse{
		ID: k.ID, Name: k.Name, Scope: string(k.Scope), Key: secret, Prefix: k.Prefix, CreatedAt: k.CreatedAt,
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

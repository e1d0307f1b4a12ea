package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/heraldhq/herald"
)

type providerEntryBody struct {
	Kind          string          `json:"kind"`
	Settings      json.RawMessage `json:"settings"`
	RatePerSecond float64         `json:"rate_per_second"`
}

// providersResponse never carries settings: they hold credentials.
type providersResponse struct {
	Channel   string             `json:"channel"`
	Providers []providerResponse `json:"providers"`
}

type providerResponse struct {
	Kind string `json:"kind"`
}

func pathChannel(r *http.Request) (herald.Channel, error) {
	c := herald.Channel(r.PathValue("channel"))
	if !c.Valid() {
		return "", herald.Errorf(herald.CodeNotFound, "no channel %q; use push, email or sms", c)
	}
	return c, nil
}

func toProvidersResponse(c herald.Channel, kinds []string) providersResponse {
	out := providersResponse{Channel: string(c), Providers: make([]providerResponse, 0, len(kinds))}
	for _, k := range kinds {
		out.Providers = append(out.Providers, providerResponse{Kind: k})
	}
	return out
}

func (s *server) putProviders(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	c, err := pathChannel(r)
	if err != nil {
		return err
	}
	var body []providerEntryBody
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	if body == nil {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the request body must be a JSON array of providers"}
	}
	var v herald.Validation
	entries := make([]herald.ProviderEntry, 0, len(body))
	kinds := make([]string, 0, len(body))
	for i, e := range body {
		field := "[" + strconv.Itoa(i) + "]"
		if e.Kind == "" {
			v.Add(field+".kind", "is required")
		}
		settings := bytes.TrimSpace(e.Settings)
		if bytes.Equal(settings, []byte("null")) {
			settings = nil
		}
		if len(settings) > 0 && settings[0] != '{' {
			v.Add(field+".settings", "must be an object")
		}
		entries = append(entries, herald.ProviderEntry{Kind: e.Kind, Settings: json.RawMessage(settings), RatePerSecond: e.RatePerSecond})
		kinds = append(kinds, e.Kind)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := s.providers.Put(r.Context(), caller.AppID, c, entries); err != nil {
		return fmt.Errorf("httpapi: put %s providers: %w", c, err)
	}
	s.writeJSON(w, r, http.StatusOK, toProvidersResponse(c, kinds))
	return nil
}

func (s *server) getProviders(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	c, err := pathChannel(r)
	if err != nil {
		return err
	}
	kinds, err := s.providers.Kinds(r.Context(), caller.AppID, c)
	if err != nil {
		return fmt.Errorf("httpapi: get %s providers: %w", c, err)
	}
	s.writeJSON(w, r, http.StatusOK, toProvidersResponse(c, kinds))
	return nil
}

package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/heraldhq/herald"
)

// WebhookConfigurer keeps an app's webhook endpoints. It is declared here,
// where it is consumed; the composition root satisfies it with
// internal/webhook, which seals each endpoint's secret.
type WebhookConfigurer interface {
	// Create validates and stores an endpoint and returns it with its
	// secret, shown this once. Called by POST /v1/webhooks. Errors:
	// CodeInvalid naming "url" or "events[i]".
	Create(ctx context.Context, appID, url string, events []string) (herald.Webhook, string, error)
	// List returns the app's endpoints. Called by GET /v1/webhooks.
	List(ctx context.Context, appID string) ([]herald.Webhook, error)
	// Delete removes an endpoint. Called by DELETE /v1/webhooks/{id}.
	// Errors: CodeNotFound when the app has no such endpoint.
	Delete(ctx context.Context, appID, id string) error
}

type createWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// webhookResponse carries the secret only in the answer to its creation.
type webhookResponse struct {
	ID         string     `json:"id"`
	URL        string     `json:"url"`
	Events     []string   `json:"events"`
	Secret     string     `json:"secret,omitempty"`
	Status     string     `json:"status"` // active, or disabled after a 410
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
}

type webhookListResponse struct {
	Data []webhookResponse `json:"data"`
}

func toWebhookResponse(w herald.Webhook, secret string) webhookResponse {
	out := webhookResponse{ID: w.ID, URL: w.URL, Events: w.Events, Secret: secret, Status: "active",
		CreatedAt: w.CreatedAt.UTC(), DisabledAt: w.DisabledAt}
	if out.Events == nil {
		out.Events = []string{}
	}
	if w.DisabledAt != nil {
		out.Status = "disabled"
	}
	return out
}

func (s *server) webhooksOrUnavailable() (WebhookConfigurer, error) {
	if s.webhooks == nil {
		return nil, herald.Errorf(herald.CodeUnavailable, "this process cannot manage webhooks: it runs without the api role")
	}
	return s.webhooks, nil
}

func (s *server) createWebhook(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	hooks, err := s.webhooksOrUnavailable()
	if err != nil {
		return err
	}
	var req createWebhookRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	hook, secret, err := hooks.Create(r.Context(), caller.AppID, req.URL, req.Events)
	if err != nil {
		return fmt.Errorf("httpapi: create webhook: %w", err)
	}
	s.writeJSON(w, r, http.StatusCreated, toWebhookResponse(hook, secret))
	return nil
}

// listWebhooks answers every endpoint of the app on one page: an app has
// a handful, and the list has no next_cursor.
func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	hooks, err := s.webhooksOrUnavailable()
	if err != nil {
		return err
	}
	list, err := hooks.List(r.Context(), caller.AppID)
	if err != nil {
		return fmt.Errorf("httpapi: list webhooks: %w", err)
	}
	out := webhookListResponse{Data: make([]webhookResponse, 0, len(list))}
	for _, h := range list {
		out.Data = append(out.Data, toWebhookResponse(h, ""))
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	hooks, err := s.webhooksOrUnavailable()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := hooks.Delete(r.Context(), caller.AppID, id); err != nil {
		return fmt.Errorf("httpapi: delete webhook %q: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

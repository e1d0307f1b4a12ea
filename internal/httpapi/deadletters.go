package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/heraldhq/herald"
)

// Replayer replays dead deliveries. It is declared here, where it is
// consumed; the composition root satisfies it with internal/deadletter.
type Replayer interface {
	// Replay gives the app's dead delivery a fresh budget of attempts and
	// queues it. Called by POST /v1/dead-letters/{delivery_id}/replay.
	// Errors: CodeNotFound when the app has no such delivery, CodeConflict
	// when it is not dead or a provider accepted it once.
	Replay(ctx context.Context, appID, deliveryID string) (herald.Delivery, error)
}

type deadLetterListResponse struct {
	Data       []deadLetterResponse `json:"data"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

type deadLetterResponse struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id"`
	UserID         string    `json:"user_id,omitempty"`
	Channel        string    `json:"channel"`
	Attempts       int       `json:"attempts"`
	Reason         string    `json:"reason"`
	DeadAt         time.Time `json:"dead_at"`
	// PossibleDuplicate: an attempt's outcome was unknown, so the provider
	// may have it already; replaying it may send it twice.
	PossibleDuplicate bool                   `json:"possible_duplicate"`
	Errors            []attemptErrorResponse `json:"errors"`
}

// attemptErrorResponse is one failed attempt of a dead delivery.
type attemptErrorResponse struct {
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
	Provider string    `json:"provider,omitempty"`
	Detail   string    `json:"detail"`
}

func toDeadLetterResponse(dl herald.DeadLetter) deadLetterResponse {
	d := dl.Delivery
	out := deadLetterResponse{ID: d.ID, NotificationID: d.NotificationID, UserID: d.UserID, Channel: string(d.Channel),
		Attempts: d.Attempts, Reason: d.Reason, DeadAt: d.UpdatedAt.UTC(), Errors: []attemptErrorResponse{}}
	for _, e := range dl.Events {
		out.PossibleDuplicate = out.PossibleDuplicate || possibleDuplicate(e)
		if e.Status == herald.StatusDead {
			out.DeadAt = e.At.UTC()
		}
		// An attempt's error is on the event of its outcome: a retry
		// (queued again) or the end (dead); sending events carry none.
		if e.Attempt > 0 && e.Detail != "" && (e.Status == herald.StatusQueued || e.Status == herald.StatusDead) {
			out.Errors = append(out.Errors, attemptErrorResponse{Attempt: e.Attempt, At: e.At.UTC(), Provider: e.Provider,
				Detail: maskDetail(d, e.Detail)})
		}
	}
	return out
}

// deadLetterFilter reads the list's query parameters; errors name the parameter.
func deadLetterFilter(q url.Values) (herald.DeadLetterFilter, error) {
	var v herald.Validation
	f := herald.DeadLetterFilter{Limit: defaultListLimit}
	if c := q.Get("channel"); c != "" {
		if !herald.Channel(c).Valid() {
			v.Add("channel", "must be push, email or sms")
		}
		f.Channel = herald.Channel(c)
	}
	f.Cursor, f.Limit = pageParams(q, &v)
	return f, v.Err()
}

func (s *server) listDeadLetters(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	f, err := deadLetterFilter(r.URL.Query())
	if err != nil {
		return err
	}
	list, next, err := s.store.ListDeadLetters(r.Context(), caller.AppID, f)
	if err != nil {
		return fmt.Errorf("httpapi: list dead letters: %w", err)
	}
	out := deadLetterListResponse{Data: make([]deadLetterResponse, 0, len(list)), NextCursor: next}
	for _, dl := range list {
		out.Data = append(out.Data, toDeadLetterResponse(dl))
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// replayDeadLetter answers 202 with the delivery as it now stands: accepted
// again and queued, with its whole timeline.
func (s *server) replayDeadLetter(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	if s.replayer == nil {
		return herald.Errorf(herald.CodeUnavailable, "this process cannot replay dead letters: it runs without the api role")
	}
	id := r.PathValue("delivery_id")
	d, err := s.replayer.Replay(r.Context(), caller.AppID, id)
	if err != nil {
		return err
	}
	events, err := s.store.ListEvents(r.Context(), caller.AppID, d.NotificationID)
	if err != nil {
		return fmt.Errorf("httpapi: list events of %q: %w", d.NotificationID, err)
	}
	var own []herald.Event
	for _, e := range events {
		if e.DeliveryID == d.ID {
			own = append(own, e)
		}
	}
	s.writeJSON(w, r, http.StatusAccepted, toDeliveryResponse(d, own))
	return nil
}

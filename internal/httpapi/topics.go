package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// maxSubscriberChanges bounds the add and remove lists of one request;
// larger topics are built over several requests.
const maxSubscriberChanges = 10_000

type putSubscribersRequest struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

type topicResponse struct {
	Name        string    `json:"name"`
	Subscribers int       `json:"subscribers"`
	CreatedAt   time.Time `json:"created_at"`
}

type subscriberListResponse struct {
	Data       []subscriberResponse `json:"data"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

type subscriberResponse struct {
	UserID string `json:"user_id"`
}

// pathTopic returns the {name} of the path; a name that cannot exist is
// answered like a missing topic.
func pathTopic(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if validate.Topic(name) != nil {
		return "", herald.Errorf(herald.CodeNotFound, "no such topic")
	}
	return name, nil
}

// putSubscribers adds and removes subscribers. Every added user must exist
// in the app: one that does not is a 422 naming its place in "add", and
// then nothing changes, so that a typo never silently drops a recipient.
func (s *server) putSubscribers(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	name := r.PathValue("name")
	var body putSubscribersRequest
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	var v herald.Validation
	if err := validate.Topic(name); err != nil {
		v.Add("name", "%v", err)
	}
	for _, l := range []struct {
		field string
		ids   []string
	}{{"add", body.Add}, {"remove", body.Remove}} {
		if len(l.ids) > maxSubscriberChanges {
			v.Add(l.field, "at most %d user ids per request", maxSubscriberChanges)
			continue
		}
		for i, id := range l.ids {
			if !validUserID(id) {
				v.Add(l.field+"["+strconv.Itoa(i)+"]", "must be 1 to %d printable characters without a slash", maxUserID)
			}
		}
	}
	if len(body.Add) == 0 && len(body.Remove) == 0 {
		v.Add("add", "give user ids to add or remove")
	}
	if err := v.Err(); err != nil {
		return err
	}
	missing, err := s.store.UpdateSubscribers(r.Context(), caller.AppID, name, body.Add, body.Remove, s.now().UTC())
	if err != nil {
		return fmt.Errorf("httpapi: update subscribers of %q: %w", name, err)
	}
	if len(missing) > 0 {
		absent := map[string]bool{}
		for _, id := range missing {
			absent[id] = true
		}
		for i, id := range body.Add {
			if absent[id] {
				v.Add("add["+strconv.Itoa(i)+"]", "no user %q in this app: create it with PUT /v1/users/{user_id}", id)
			}
		}
		return v.Err()
	}
	return s.writeTopic(w, r, caller.AppID, name)
}

func (s *server) getTopic(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	return s.writeTopic(w, r, caller.AppID, name)
}

func (s *server) writeTopic(w http.ResponseWriter, r *http.Request, appID, name string) error {
	t, err := s.store.GetTopic(r.Context(), appID, name)
	if err != nil {
		return fmt.Errorf("httpapi: get topic %q: %w", name, err)
	}
	s.writeJSON(w, r, http.StatusOK, topicResponse{Name: t.Name, Subscribers: t.Subscribers, CreatedAt: t.CreatedAt.UTC()})
	return nil
}

// subscriberCursorPrefix marks a subscriber list cursor, which carries the
// last user id of a page.
const subscriberCursorPrefix = "s:"

func (s *server) listSubscribers(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	var v herald.Validation
	cursor, limit := pageParams(r.URL.Query(), &v)
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		id, ok := bytes.CutPrefix(b, []byte(subscriberCursorPrefix))
		if err != nil || !ok || len(id) == 0 {
			v.Add("cursor", "is not a cursor returned by a previous page")
		}
		after = string(id)
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.store.GetTopic(ctx, caller.AppID, name); err != nil {
		return fmt.Errorf("httpapi: get topic %q: %w", name, err)
	}
	// One more than the page tells whether another page follows.
	ids, err := s.store.ListSubscribers(ctx, caller.AppID, name, after, limit+1)
	if err != nil {
		return fmt.Errorf("httpapi: list subscribers of %q: %w", name, err)
	}
	out := subscriberListResponse{Data: make([]subscriberResponse, 0, min(len(ids), limit))}
	if len(ids) > limit {
		ids = ids[:limit]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(subscriberCursorPrefix + ids[len(ids)-1]))
	}
	for _, id := range ids {
		out.Data = append(out.Data, subscriberResponse{UserID: id})
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

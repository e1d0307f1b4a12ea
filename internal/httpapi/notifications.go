package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// Notification statuses derived from the deliveries; documented in openapi.yaml.
const (
	notificationAccepted   = "accepted"   // no delivery has moved past accepted, queued or scheduled
	notificationProcessing = "processing" // some delivery has moved on, some are not done
	notificationCompleted  = "completed"  // every delivery is done (or there is none)
)

// List limits of GET /v1/notifications.
const (
	defaultListLimit = 50
	maxListLimit     = 500
	maxCursor        = 512
)

func notificationStatus(ds []herald.Delivery) string {
	allDone, started := true, false
	for _, d := range ds {
		if !d.Status.Done() {
			allDone = false
		}
		switch d.Status {
		case herald.StatusAccepted, herald.StatusQueued, herald.StatusScheduled:
		default:
			started = true
		}
	}
	switch {
	case allDone:
		return notificationCompleted
	case !started:
		return notificationAccepted
	}
	return notificationProcessing
}

type notificationResponse struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Category  string    `json:"category,omitempty"`
	Priority  string    `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
	// Template and TemplateVersion name the template version the content
	// was rendered from, absent for content given inline.
	Template        string `json:"template,omitempty"`
	TemplateVersion int    `json:"template_version,omitempty"`
	// Fanout is the progress of the fan-out to a topic's subscribers,
	// absent for a notification not sent to a topic.
	Fanout     *fanoutResponse    `json:"fanout,omitempty"`
	Deliveries []deliveryResponse `json:"deliveries"`
}

type fanoutResponse struct {
	Topic  string `json:"topic"`
	Status string `json:"status"`
	// Recipients counts the subscribers whose deliveries are in the log so far.
	Recipients int `json:"recipients"`
}

type deliveryResponse struct {
	ID      string `json:"id"`
	UserID  string `json:"user_id,omitempty"`
	Channel string `json:"channel"`
	// Address is the email address or phone number, masked: a send key may
	// read statuses but should not learn users' contact details.
	Address string `json:"address,omitempty"`
	// Platform replaces the address for push: a device token is a credential.
	Platform string `json:"platform,omitempty"`
	// Locale is the template's locale variant the delivery was rendered
	// in, absent for the base parts and for content given inline.
	Locale            string    `json:"locale,omitempty"`
	Status            string    `json:"status"`
	Reason            string    `json:"reason,omitempty"`
	Provider          string    `json:"provider,omitempty"`
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
	Attempts          int       `json:"attempts"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	// PossibleDuplicate is true when an attempt's outcome was unknown (a
	// crash or a timeout mid-call), so the provider may have it twice.
	PossibleDuplicate bool            `json:"possible_duplicate"`
	Timeline          []eventResponse `json:"timeline"`
}

type eventResponse struct {
	Status   string    `json:"status"`
	At       time.Time `json:"at"`
	Detail   string    `json:"detail,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Attempt  int       `json:"attempt"`
	Provider string    `json:"provider,omitempty"`
	// ProviderMessageID is the provider's id of the message this step is
	// about: set from the send the provider accepted onwards.
	ProviderMessageID string `json:"provider_message_id,omitempty"`
}

type notificationListResponse struct {
	Data       []notificationSummary `json:"data"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

type notificationSummary struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Category  string    `json:"category,omitempty"`
	Priority  string    `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
}

func priorityOrNormal(p herald.Priority) string {
	if p == "" {
		return string(herald.PriorityNormal)
	}
	return string(p)
}

// maskAddress keeps enough of an email address or phone number to
// recognise it and hides the rest.
func maskAddress(c herald.Channel, addr string) string {
	switch c {
	case herald.ChannelEmail:
		local, domain, ok := strings.Cut(addr, "@")
		if !ok || local == "" {
			return "***"
		}
		first, _ := utf8.DecodeRuneInString(local)
		return string(first) + "***@" + domain
	case herald.ChannelSMS:
		if len(addr) <= 6 {
			return "***"
		}
		return addr[:4] + strings.Repeat("*", len(addr)-6) + addr[len(addr)-2:]
	}
	return ""
}

// cancelNotification cancels what has not been sent yet and answers the
// notification as it now stands.
func (s *server) cancelNotification(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	if _, err := s.sender.Cancel(r.Context(), caller.AppID, r.PathValue("id")); err != nil {
		return err
	}
	return s.getNotification(w, r, caller)
}

func (s *server) getNotification(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	id := r.PathValue("id")
	ctx := r.Context()
	n, err := s.store.GetNotification(ctx, caller.AppID, id)
	if err != nil {
		return fmt.Errorf("httpapi: get notification %q: %w", id, err)
	}
	ds, err := s.store.ListDeliveries(ctx, caller.AppID, id)
	if err != nil {
		return fmt.Errorf("httpapi: list deliveries of %q: %w", id, err)
	}
	events, err := s.store.ListEvents(ctx, caller.AppID, id)
	if err != nil {
		return fmt.Errorf("httpapi: list events of %q: %w", id, err)
	}
	byDelivery := map[string][]herald.Event{}
	for _, e := range events {
		byDelivery[e.DeliveryID] = append(byDelivery[e.DeliveryID], e)
	}
	out := notificationResponse{
		ID: n.ID, Status: notificationStatus(ds), Category: n.Category, Priority: priorityOrNormal(n.Priority),
		CreatedAt: n.CreatedAt.UTC(), Deliveries: make([]deliveryResponse, 0, len(ds)),
	}
	if n.Template != nil {
		out.Template, out.TemplateVersion = n.Template.Name, n.Template.Version
	}
	if out.Status, out.Fanout, err = s.fanout(ctx, caller.AppID, id, out.Status); err != nil {
		return err
	}
	for _, d := range ds {
		dr := toDeliveryResponse(d, byDelivery[d.ID])
		if n.Template != nil {
			dr.Locale = n.Template.VariantFor(d)
		}
		out.Deliveries = append(out.Deliveries, dr)
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// fanout returns the notification's fan-out, nil when it was not sent to
// a topic, and its status given the one its deliveries say: while the
// fan-out runs, more deliveries are to come, so it is not completed.
func (s *server) fanout(ctx context.Context, appID, id, status string) (string, *fanoutResponse, error) {
	f, err := s.store.GetFanout(ctx, appID, id)
	if herald.IsNotFound(err) {
		return status, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("httpapi: fan-out of %q: %w", id, err)
	}
	if f.Status != herald.FanoutCompleted && status == notificationCompleted {
		status = notificationProcessing
	}
	return status, &fanoutResponse{Topic: f.Topic, Status: f.Status, Recipients: f.Recipients}, nil
}

// toDeliveryResponse shapes a delivery and its own events, oldest first.
func toDeliveryResponse(d herald.Delivery, events []herald.Event) deliveryResponse {
	dr := deliveryResponse{
		ID: d.ID, UserID: d.UserID, Channel: string(d.Channel), Address: maskAddress(d.Channel, d.Address),
		Status: string(d.Status), Reason: d.Reason, Provider: d.Provider, ProviderMessageID: d.ProviderMessageID,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		Timeline: make([]eventResponse, 0, len(events)),
	}
	if d.Channel == herald.ChannelPush {
		dr.Platform = string(d.Platform)
	}
	// The log keeps the provider's message id on the delivery, from the
	// attempt the provider accepted: it names that step and every later one
	// (the provider's own reports: delivered, opened, a bounce).
	accepted := -1
	for i, e := range events {
		if e.Status == herald.StatusSent {
			accepted = i
		}
	}
	for i, e := range events {
		dr.PossibleDuplicate = dr.PossibleDuplicate || possibleDuplicate(e)
		ev := eventResponse{
			Status: string(e.Status), At: e.At.UTC(), Detail: maskDetail(d, e.Detail), Reason: e.Reason,
			Attempt: e.Attempt, Provider: e.Provider,
		}
		if accepted >= 0 && i >= accepted {
			ev.ProviderMessageID = d.ProviderMessageID
		}
		dr.Timeline = append(dr.Timeline, ev)
	}
	return dr
}

// possibleDuplicatePrefix starts the detail of an event after which the
// provider may have received the delivery twice (the worker writes it).
const possibleDuplicatePrefix = "possible_duplicate"

func possibleDuplicate(e herald.Event) bool {
	return strings.HasPrefix(e.Detail, possibleDuplicatePrefix)
}

// maskDetail hides the delivery's address in a provider's reply, which may
// quote the address the API otherwise masks.
func maskDetail(d herald.Delivery, detail string) string {
	if masked := maskAddress(d.Channel, d.Address); d.Address != "" && masked != "" {
		return strings.ReplaceAll(detail, d.Address, masked)
	}
	return detail
}

// validStatus reports whether s is a delivery status of the contract.
func validStatus(s herald.Status) bool {
	switch s {
	case herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued, herald.StatusSending,
		herald.StatusSent, herald.StatusDelivered, herald.StatusOpened, herald.StatusClicked,
		herald.StatusFailed, herald.StatusSuppressed, herald.StatusCanceled, herald.StatusDead:
		return true
	}
	return false
}

// pageParams reads the cursor and limit every list takes; problems go to v,
// naming the parameter.
func pageParams(q url.Values, v *herald.Validation) (cursor string, limit int) {
	cursor, limit = q.Get("cursor"), defaultListLimit
	if len(cursor) > maxCursor {
		v.Add("cursor", "is not a cursor from a previous page")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxListLimit {
			v.Add("limit", "must be an integer from 1 to %d", maxListLimit)
		}
		limit = n
	}
	return cursor, limit
}

// notificationFilter reads the list's query parameters; errors name the parameter.
func notificationFilter(q url.Values) (herald.NotificationFilter, error) {
	var v herald.Validation
	f := herald.NotificationFilter{Limit: defaultListLimit}
	if id := q.Get("user_id"); id != "" {
		if !validUserID(id) {
			v.Add("user_id", "must be 1 to %d printable characters without a slash", maxUserID)
		}
		f.UserID = id
	}
	if st := q.Get("status"); st != "" {
		if !validStatus(herald.Status(st)) {
			v.Add("status", "is not a delivery status")
		}
		f.Status = herald.Status(st)
	}
	if c := q.Get("channel"); c != "" {
		if !herald.Channel(c).Valid() {
			v.Add("channel", "must be push, email or sms")
		}
		f.Channel = herald.Channel(c)
	}
	if since := q.Get("since"); since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			v.Add("since", "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		f.Since = t
	}
	f.Cursor, f.Limit = pageParams(q, &v)
	return f, v.Err()
}

func (s *server) listNotifications(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	f, err := notificationFilter(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	list, next, err := s.store.ListNotifications(ctx, caller.AppID, f)
	if err != nil {
		return fmt.Errorf("httpapi: list notifications: %w", err)
	}
	out := notificationListResponse{Data: make([]notificationSummary, 0, len(list)), NextCursor: next}
	for _, n := range list {
		// One query per item: fine at 500 items for now; a store method
		// that summarises statuses can replace it when it shows up in profiles.
		ds, err := s.store.ListDeliveries(ctx, caller.AppID, n.ID)
		if err != nil {
			return fmt.Errorf("httpapi: list deliveries of %q: %w", n.ID, err)
		}
		status, _, err := s.fanout(ctx, caller.AppID, n.ID, notificationStatus(ds))
		if err != nil {
			return err
		}
		out.Data = append(out.Data, notificationSummary{
			ID: n.ID, Status: status, Category: n.Category,
			Priority: priorityOrNormal(n.Priority), CreatedAt: n.CreatedAt.UTC(),
		})
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

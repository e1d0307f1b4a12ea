package herald

import (
	"context"
	"fmt"
	"time"
)

// Category is an app's settings for the notifications of one category
// (the "category" of a send request): whether it is critical and the
// frequency caps its deliveries are held to.
type Category struct {
	AppID string
	Name  string
	// Critical categories bypass opt-outs, never frequency caps.
	Critical      bool
	FrequencyCaps []FrequencyCap
	// Digest is kept as given; nil when none.
	Digest    *Digest
	CreatedAt time.Time
	UpdatedAt time.Time
}

// FrequencyCap is "at most Max deliveries on Channel per Per, per user":
// past it a delivery is suppressed or deferred, as Over says.
type FrequencyCap struct {
	Channel Channel
	Max     int
	Per     time.Duration
	Over    string // CapSuppress or CapDefer
}

// What a frequency cap does with a delivery over it.
const (
	CapSuppress = "suppress"
	CapDefer    = "defer"
)

// Bounds of a frequency cap's period.
const (
	MinCapPeriod = time.Second
	MaxCapPeriod = 31 * 24 * time.Hour
)

// Limit is the cap as a rate limit.
func (c FrequencyCap) Limit() Limit { return Limit{Max: c.Max, Per: c.Per} }

// String names the rule in timelines: "email: at most 3 per 1h0m0s (suppress)".
func (c FrequencyCap) String() string {
	return fmt.Sprintf("%s: at most %d per %s (%s)", c.Channel, c.Max, c.Per, c.Over)
}

// Digest gathers a category's notifications into one per window.
type Digest struct {
	Window   time.Duration
	Template string
}

// CategoryStore keeps each app's categories.
type CategoryStore interface {
	// PutCategory creates or replaces the category (keeping CreatedAt of
	// an existing one) and reports whether it was created. Called by
	// PUT /v1/categories/{name}.
	PutCategory(ctx context.Context, c Category) (Category, bool, error)
	// GetCategory returns the category. CodeNotFound when the app has
	// none of this name. Called by the API and, through a short cache, by
	// the worker before each send.
	GetCategory(ctx context.Context, appID, name string) (Category, error)
	// ListCategories returns the app's categories by name.
	ListCategories(ctx context.Context, appID string) ([]Category, error)
}

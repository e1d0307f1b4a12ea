package deliver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// CategoryReader reads an app's categories (the store).
//
// Errors: CodeNotFound when the app has no such category.
type CategoryReader interface {
	GetCategory(ctx context.Context, appID, name string) (herald.Category, error)
}

// Caps holds deliveries to their category's frequency caps. Categories
// are read through a short cache, so that a busy worker does not read the
// store for every delivery; a change reaches the workers within CacheTTL.
type Caps struct {
	limiter herald.RateLimiter
	store   CategoryReader
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedCategory // by app id and name

	// OnHeld, when set, is told each delivery a cap held back, with what
	// the cap did (CapSuppress or CapDefer); for metrics. Set it before use.
	OnHeld func(c herald.Channel, over string)
}

type cachedCategory struct {
	c       herald.Category // zero when the app has no such category
	expires time.Time
}

// CacheTTL is how long a category read is reused.
const CacheTTL = 5 * time.Second

// maxCachedCategories bounds the cache; past it the cache starts afresh.
const maxCachedCategories = 10_000

// NewCaps returns the frequency-cap check on limiter (shared between
// processes when it is the Redis one), with categories from store.
func NewCaps(store CategoryReader, limiter herald.RateLimiter) *Caps {
	return &Caps{limiter: limiter, store: store, ttl: CacheTTL, now: time.Now, cache: map[string]cachedCategory{}}
}

// Category returns the app's category, the zero Category when it has none
// of this name, through the cache.
func (c *Caps) Category(ctx context.Context, appID, name string) (herald.Category, error) {
	k := appID + "\x00" + name
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[k]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	cat, err := c.store.GetCategory(ctx, appID, name)
	if herald.IsNotFound(err) {
		cat, err = herald.Category{}, nil
	}
	if err != nil {
		return herald.Category{}, fmt.Errorf("deliver: category %q of app %q: %w", name, appID, err)
	}
	c.mu.Lock()
	if len(c.cache) >= maxCachedCategories {
		clear(c.cache)
	}
	c.cache[k] = cachedCategory{c: cat, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return cat, nil
}

// Critical reports whether the app marks the category critical; false
// when it cannot tell.
func (c *Caps) Critical(ctx context.Context, appID, category string) bool {
	cat, err := c.Category(ctx, appID, category)
	return err == nil && cat.Critical
}

// over is a cap that held a delivery back.
type over struct {
	cap        herald.FrequencyCap
	retryAfter time.Duration
}

// check counts d against each cap of its category on its channel and
// returns the first that is full. Counting is check-and-take, once per
// notification: a cap's slot is used once this returns nil, whether or not
// the send then succeeds, and caps checked before a full one keep the slot
// they gave.
func (c *Caps) check(ctx context.Context, d herald.Delivery, category string) (*over, error) {
	cat, err := c.Category(ctx, d.AppID, category)
	if err != nil {
		return nil, err
	}
	for _, fc := range cat.FrequencyCaps {
		if fc.Channel != d.Channel {
			continue
		}
		// Named by the notification: a push to several devices counts
		// once, and so does a delivery handled twice.
		dec, err := c.limiter.Allow(ctx, capKey(d, category, fc), fc.Limit(), d.NotificationID)
		if err != nil {
			return nil, fmt.Errorf("deliver: frequency cap %s of category %q: %w", fc, category, err)
		}
		if !dec.Allowed {
			return &over{cap: fc, retryAfter: dec.RetryAfter}, nil
		}
	}
	return nil, nil
}

// capKey names one user's window of one cap. The rule is part of it, so a
// cap whose max or period changes starts counting afresh rather than
// reading a window kept for another rule.
func capKey(d herald.Delivery, category string, fc herald.FrequencyCap) string {
	return "cap:" + d.AppID + ":" + strconv.Quote(category) + ":" + string(fc.Channel) + ":" +
		strconv.Itoa(fc.Max) + "/" + fc.Per.String() + ":" + d.UserID
}

// applyCaps holds d back when a frequency cap of its category is full:
// suppressed or deferred as the cap says. Only deliveries to a user are
// capped, and only before their first attempt: a retry already has its
// slot. held reports whether d was held back (or must be looked at again).
func (w *Worker) applyCaps(ctx context.Context, d herald.Delivery, n herald.Notification) (v Verdict, held bool) {
	if w.o.Caps == nil || d.UserID == "" || d.Attempts > 0 || d.Status == herald.StatusSending {
		return Verdict{}, false
	}
	o, err := w.o.Caps.check(ctx, d, n.Category)
	if err != nil {
		// Sending unchecked could break the cap; wait for the counter instead.
		w.o.Logger.Error("checking frequency caps", "delivery", d.ID, "err", err)
		return Verdict{Action: Retry, Delay: 5 * time.Second}, true
	}
	if o == nil {
		return Verdict{}, false
	}
	if w.o.Caps.OnHeld != nil {
		w.o.Caps.OnHeld(d.Channel, o.cap.Over)
	}
	detail := fmt.Sprintf("frequency cap of category %q: %s", n.Category, o.cap)
	if o.cap.Over == herald.CapDefer {
		until := w.now().Add(max(o.retryAfter, time.Millisecond))
		return w.Defer(ctx, d, until, herald.ReasonRateLimited, detail+": held until "+until.Format(time.RFC3339)), true
	}
	return w.finish(ctx, d, d.Attempts, herald.StatusSuppressed, herald.ReasonRateLimited, "", "", time.Time{}, detail), true
}

// critical reports whether the app marks n's category critical: it goes
// through opt-outs and quiet hours, never through frequency caps.
func (w *Worker) critical(ctx context.Context, d herald.Delivery, n herald.Notification) bool {
	return w.o.Critical != nil && w.o.Critical(ctx, d.AppID, n.Category)
}

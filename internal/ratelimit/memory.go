// Package ratelimit holds Herald's rate limiters: one in process, for a
// single Herald process, and one on Redis, shared by every process that
// points at the same server. Both count sliding windows exactly (a log of
// the allowed events' times), so a limit of N per period is never
// exceeded in any window, and both pass the suite in ratelimittest.
package ratelimit

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// DefaultMaxKeys bounds the keys an in-process limiter remembers.
const DefaultMaxKeys = 1 << 20

const shards = 64

// Memory is the in-process limiter: keys spread over shards, each a map
// behind its own lock, holding the times of the events allowed in the
// key's current window. A key whose window has emptied is forgotten.
type Memory struct {
	now     func() time.Time
	seed    maphash.Seed
	maxKeys int // per shard
	shards  [shards]shard
}

type shard struct {
	mu    sync.Mutex
	keys  map[string]*window
	calls int // since the last sweep
}

// window is one key's allowed events, oldest first; per is how long each counts.
type window struct {
	times []int64  // Unix nanoseconds
	ids   []string // the events' names, "" when unnamed; parallel to times
	per   int64
}

// MemoryOptions tune NewMemory.
type MemoryOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxKeys bounds how many keys are remembered at once (default
	// DefaultMaxKeys). Past it, a key still counting is forgotten to make
	// room, and that key's next window starts empty: with more live keys
	// than this, limits hold only approximately.
	MaxKeys int
}

// NewMemory returns an in-process limiter.
func NewMemory(o MemoryOptions) *Memory {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	m := &Memory{now: o.Now, seed: maphash.MakeSeed(), maxKeys: max(1, o.MaxKeys/shards)}
	for i := range m.shards {
		m.shards[i].keys = map[string]*window{}
	}
	return m
}

// Allow counts one event under key if the limit allows it.
func (m *Memory) Allow(_ context.Context, key string, l herald.Limit, event string) (herald.RateDecision, error) {
	if err := check(l); err != nil {
		return herald.RateDecision{}, err
	}
	now := m.now().UnixNano()
	per := int64(l.Per)
	s := &m.shards[maphash.String(m.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now, m.maxKeys)
	w := s.keys[key]
	if w == nil {
		if len(s.keys) >= m.maxKeys {
			s.evictOne()
		}
		w = &window{}
		s.keys[key] = w
	}
	w.per = per
	w.expire(now)
	if event != "" && slices.Contains(w.ids, event) {
		return herald.RateDecision{Allowed: true, Remaining: max(0, l.Max-len(w.times))}, nil
	}
	if len(w.times) >= l.Max {
		// The event that must leave the window before another fits.
		first := w.times[len(w.times)-l.Max]
		return herald.RateDecision{RetryAfter: time.Duration(first + per - now)}, nil
	}
	w.times, w.ids = append(w.times, now), append(w.ids, event)
	return herald.RateDecision{Allowed: true, Remaining: l.Max - len(w.times)}, nil
}

// Peek reports whether one more event under key would be allowed now,
// without counting it.
func (m *Memory) Peek(_ context.Context, key string, l herald.Limit) (herald.RateDecision, error) {
	if err := check(l); err != nil {
		return herald.RateDecision{}, err
	}
	now := m.now().UnixNano()
	per := int64(l.Per)
	s := &m.shards[maphash.String(m.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.keys[key]
	if w == nil {
		return herald.RateDecision{Allowed: true, Remaining: l.Max}, nil
	}
	w.per = per
	w.expire(now)
	if len(w.times) >= l.Max {
		first := w.times[len(w.times)-l.Max]
		return herald.RateDecision{RetryAfter: time.Duration(first + per - now)}, nil
	}
	return herald.RateDecision{Allowed: true, Remaining: l.Max - len(w.times)}, nil
}

// expire drops the events that no longer count: those at least per old.
func (w *window) expire(now int64) {
	i := 0
	for i < len(w.times) && w.times[i] <= now-w.per {
		i++
	}
	if i > 0 {
		w.times = append(w.times[:0], w.times[i:]...)
		w.ids = append(w.ids[:0], w.ids[i:]...)
	}
}

// sweep forgets emptied windows every so often, so memory follows the
// keys in use rather than every key ever seen; at once when the shard is full.
func (s *shard) sweep(now int64, maxKeys int) {
	s.calls++
	// A full shard sweeps at most every 64 calls: a flood of new keys then
	// evicts rather than scanning the shard on every call.
	if s.calls < 4096 && (len(s.keys) < maxKeys || s.calls < 64) {
		return
	}
	s.calls = 0
	for k, w := range s.keys {
		w.expire(now)
		if len(w.times) == 0 {
			delete(s.keys, k)
		}
	}
}

// evictOne forgets an arbitrary key (map order is random).
func (s *shard) evictOne() {
	for k := range s.keys {
		delete(s.keys, k)
		return
	}
}

// check refuses a limit that cannot be counted.
func check(l herald.Limit) error {
	if l.Max < 1 || l.Per <= 0 {
		return herald.Errorf(herald.CodeInvalid, "ratelimit: limit of %d per %v: want at least 1 per a positive period", l.Max, l.Per)
	}
	return nil
}

// Len returns how many keys are remembered (for tests and metrics).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

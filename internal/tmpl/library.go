package tmpl

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what the library needs of the template store.
type Store interface {
	PutTemplate(ctx context.Context, t herald.Template) (int, error)
	GetTemplate(ctx context.Context, appID, name string, version int) (herald.Template, error)
	LatestTemplateVersion(ctx context.Context, appID, name string) (int, error)
}

// Options configure a Library. Zero fields get defaults.
type Options struct {
	Limits Limits
	// CacheSize bounds how many compiled versions stay in memory; default 1000.
	CacheSize int
	// CacheBytes bounds the source bytes of the compiled versions in
	// memory (their parse trees take a few times more); default 32 MiB.
	CacheBytes int
	Now        func() time.Time
}

// Library saves templates after checking them and hands out compiled
// versions from an in-process cache.
//
// The cache is keyed by (app, name, version) and needs no invalidation:
// a version is immutable and its number is never reused (a delete keeps
// the numbering), so a cached entry can never be stale. What changes on a
// save is which version is the latest, and a delete hides them all; every
// load asks the store for the latest number (one indexed row), so a save
// or a delete in one process is seen by the next send in every other
// process, with no invalidation message to lose and no TTL to wait out.
type Library struct {
	store  Store
	limits Limits
	now    func() time.Time
	size   int
	bytes  int

	mu     sync.Mutex
	order  *list.List // of *entry, most recently used first
	byKey  map[cacheKey]*list.Element
	cached int // source bytes of the entries
}

type cacheKey struct {
	app, name string
	version   int
}

type entry struct {
	key cacheKey
	c   *Compiled
}

// NewLibrary returns a Library over store.
func NewLibrary(store Store, o Options) *Library {
	if o.CacheSize <= 0 {
		o.CacheSize = 1000
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 32 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Library{store: store, limits: o.Limits.withDefaults(), now: o.Now, size: o.CacheSize, bytes: o.CacheBytes,
		order: list.New(), byKey: map[cacheKey]*list.Element{}}
}

// Save checks t and stores it as the next version of its name, returning
// it with its version and time. Called by PUT /v1/templates/{name}.
// Errors: CodeInvalid naming each offending field with its line.
func (l *Library) Save(ctx context.Context, t herald.Template) (herald.Template, error) {
	if err := CheckName(t.Name); err != nil {
		return herald.Template{}, herald.Invalid("name", err.Error())
	}
	c, err := Compile(t, l.limits)
	if err != nil {
		return herald.Template{}, err
	}
	t.CreatedAt = l.now().UTC().Truncate(time.Microsecond)
	v, err := l.store.PutTemplate(ctx, t)
	if err != nil {
		return herald.Template{}, fmt.Errorf("tmpl: save %q: %w", t.Name, err)
	}
	t.Version, c.Version = v, v
	l.put(cacheKey{t.AppID, t.Name, v}, c)
	return t, nil
}

// Load returns the compiled version of the app's template, the latest
// when version is 0. Errors: CodeNotFound when the app has no such
// template or version.
func (l *Library) Load(ctx context.Context, appID, name string, version int) (*Compiled, error) {
	// Every load asks for the latest number, pinned or not: it is how a
	// save or a delete elsewhere is seen at once.
	latest, err := l.store.LatestTemplateVersion(ctx, appID, name)
	if err != nil {
		return nil, fmt.Errorf("tmpl: load %q: %w", name, err)
	}
	switch {
	case version == 0:
		version = latest
	case version > latest:
		return nil, fmt.Errorf("tmpl: load %q version %d: %w", name, version, herald.ErrNotFound)
	}
	key := cacheKey{appID, name, version}
	if c := l.get(key); c != nil {
		return c, nil
	}
	t, err := l.store.GetTemplate(ctx, appID, name, version)
	if err != nil {
		return nil, fmt.Errorf("tmpl: load %q version %d: %w", name, version, err)
	}
	c, err := Compile(t, l.limits)
	if err != nil {
		// Saved under other limits, or by a build with other rules.
		return nil, fmt.Errorf("tmpl: stored template %q version %d no longer compiles: %w", name, version, err)
	}
	l.put(key, c)
	return c, nil
}

func (l *Library) get(k cacheKey) *Compiled {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byKey[k]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*entry).c
	}
	return nil
}

func (l *Library) put(k cacheKey, c *Compiled) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byKey[k]; ok {
		l.order.MoveToFront(e)
		return
	}
	l.byKey[k] = l.order.PushFront(&entry{key: k, c: c})
	l.cached += c.size
	// The newest entry stays even when it alone is over the bound.
	for l.order.Len() > 1 && (l.order.Len() > l.size || l.cached > l.bytes) {
		last := l.order.Back()
		l.order.Remove(last)
		e := last.Value.(*entry)
		delete(l.byKey, e.key)
		l.cached -= e.c.size
	}
}

// Preview renders a version of the app's template (the latest for 0) as
// a send would for a recipient with this locale, and reports the variant
// and version it rendered. Called by POST /v1/templates/{name}/preview.
// Errors: CodeNotFound for no such template or version; CodeInvalid from
// Render.
func (l *Library) Preview(ctx context.Context, appID, name string, version int, locale, appDefault string,
	data map[string]any) (r herald.Rendered, variant string, v int, err error) {
	c, err := l.Load(ctx, appID, name, version)
	if err != nil {
		return herald.Rendered{}, "", 0, err
	}
	variant = c.Variant(locale, appDefault)
	r, err = c.Render(variant, data)
	return r, variant, c.Version, err
}

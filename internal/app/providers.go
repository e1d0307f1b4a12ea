package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/apns"
	"github.com/heraldhq/herald/internal/provider/failover"
	"github.com/heraldhq/herald/internal/provider/fcm"
	logprovider "github.com/heraldhq/herald/internal/provider/log"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
	"github.com/heraldhq/herald/internal/provider/smtp"
	"github.com/heraldhq/herald/internal/provider/twilio"
	"github.com/heraldhq/herald/internal/provider/webpush"
	"github.com/heraldhq/herald/internal/secret"
)

// providerKind is one row of the provider table: adding a provider kind is
// one package under internal/provider and one row here.
type providerKind struct {
	kind      string
	channels  []herald.Channel
	platforms []herald.Platform // push platforms served; nil for other channels
	build     func(settings json.RawMessage, env herald.ProviderEnv) (herald.Provider, error)
}

func providerKinds() []providerKind {
	push := []herald.Channel{herald.ChannelPush}
	return []providerKind{
		{kind: apns.Kind, channels: push, platforms: []herald.Platform{herald.PlatformIOS},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return apns.New(s, env) }},
		{kind: fcm.Kind, channels: push, platforms: []herald.Platform{herald.PlatformAndroid}, // and iOS when its settings say so
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return fcm.New(s, env) }},
		{kind: webpush.Kind, channels: push, platforms: []herald.Platform{herald.PlatformWeb},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return webpush.New(s, env) }},
		{kind: twilio.Kind, channels: []herald.Channel{herald.ChannelSMS},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return twilio.New(s, env) }},
		{kind: sendgrid.Kind, channels: []herald.Channel{herald.ChannelEmail},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return sendgrid.New(s, env) }},
		{kind: "smtp", channels: []herald.Channel{herald.ChannelEmail},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) { return smtp.New(s, env) }},
		{kind: "log", channels: herald.AllChannels(),
			platforms: []herald.Platform{herald.PlatformIOS, herald.PlatformAndroid, herald.PlatformWeb},
			build: func(s json.RawMessage, env herald.ProviderEnv) (herald.Provider, error) {
				return logprovider.New(s, env)
			}},
	}
}

func findKind(kind string) (providerKind, bool) {
	for _, k := range providerKinds() {
		if k.kind == kind {
			return k, true
		}
	}
	return providerKind{}, false
}

// maxProviders bounds one channel's failover list.
const maxProviders = 8

// providerSet stores each app's provider lists sealed, and builds the
// providers workers use, cached for a short time so that a change reaches
// every process within seconds.
type providerSet struct {
	store herald.ProviderConfigStore
	box   *secret.Box
	env   herald.ProviderEnv
	ttl   time.Duration
	now   func() time.Time
	// onState is told when a provider's circuit opens or closes (metrics).
	onState func(kind string, open bool)
	// cooldown is how long an open circuit waits before a probe.
	cooldown time.Duration

	mu    sync.Mutex
	cache map[string]builtList
}

type builtList struct {
	loaded     time.Time
	sum        [32]byte                            // of the sealed list it was built from
	byPlatform map[herald.Platform]herald.Provider // "" for email and sms
	members    []herald.Provider                   // every entry, built, in order
	err        error
}

type builtProvider struct {
	kind     providerKind
	provider herald.Provider
	rate     float64 // sends per second, 0 for no cap
}

func newProviderSet(store herald.ProviderConfigStore, box *secret.Box, env herald.ProviderEnv) *providerSet {
	return &providerSet{store: store, box: box, env: env, ttl: 10 * time.Second, now: env.Now, cache: map[string]builtList{}}
}

func sealAD(appID string, c herald.Channel) []byte {
	return []byte("providers/" + appID + "/" + string(c))
}

// Put validates and stores the provider list of a channel.
func (p *providerSet) Put(ctx context.Context, appID string, c herald.Channel, entries []herald.ProviderEntry) error {
	if !c.Valid() {
		return herald.Errorf(herald.CodeNotFound, "unknown channel %q", c)
	}
	var v herald.Validation
	if len(entries) == 0 || len(entries) > maxProviders {
		v.Add("body", "give 1 to %d providers", maxProviders)
	}
	for i, e := range entries {
		k, ok := findKind(e.Kind)
		if !ok {
			var names []string
			for _, k := range providerKinds() {
				names = append(names, k.kind)
			}
			v.Add(fmt.Sprintf("[%d].kind", i), "unknown provider kind %q (available: %v)", e.Kind, names)
			continue
		}
		if e.RatePerSecond < 0 || e.RatePerSecond > 1e6 {
			v.Add(fmt.Sprintf("[%d].rate_per_second", i), "must be between 0 (no cap) and 1000000")
		}
		if !slices.Contains(k.channels, c) {
			v.Add(fmt.Sprintf("[%d].kind", i), "provider kind %q does not serve the %s channel", e.Kind, c)
			continue
		}
		if _, err := k.build(e.Settings, p.env); err != nil {
			var he *herald.Error
			if errors.As(err, &he) && len(he.Fields) > 0 {
				for _, f := range he.Fields {
					v.Add(fmt.Sprintf("[%d].%s", i, f.Field), "%s", f.Message)
				}
			} else {
				v.Add(fmt.Sprintf("[%d].settings", i), "%v", err)
			}
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	plain, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("providers: encode: %w", err)
	}
	sealed, err := p.box.Seal(plain, sealAD(appID, c))
	if err != nil {
		return fmt.Errorf("providers: seal: %w", err)
	}
	if err := p.store.PutProviderConfig(ctx, appID, c, sealed); err != nil {
		return fmt.Errorf("providers: store %s list of app %s: %w", c, appID, err)
	}
	p.mu.Lock()
	delete(p.cache, appID+"/"+string(c))
	p.mu.Unlock()
	return nil
}

func (p *providerSet) load(ctx context.Context, appID string, c herald.Channel) ([]herald.ProviderEntry, error) {
	sealed, err := p.store.GetProviderConfig(ctx, appID, c)
	if err != nil {
		return nil, fmt.Errorf("providers: %s list of app %s: %w", c, appID, err)
	}
	return p.open(sealed, appID, c)
}

func (p *providerSet) open(sealed []byte, appID string, c herald.Channel) ([]herald.ProviderEntry, error) {
	plain, err := p.box.Open(sealed, sealAD(appID, c))
	if err != nil {
		return nil, fmt.Errorf("providers: unseal %s list of app %s (was HERALD_SECRET_KEY changed?): %w", c, appID, err)
	}
	var entries []herald.ProviderEntry
	if err := json.Unmarshal(plain, &entries); err != nil {
		return nil, fmt.Errorf("providers: decode %s list of app %s: %w", c, appID, err)
	}
	return entries, nil
}

// Kinds lists the configured kinds of a channel, in order; never their settings.
func (p *providerSet) Kinds(ctx context.Context, appID string, c herald.Channel) ([]string, error) {
	if !c.Valid() {
		return nil, herald.Errorf(herald.CodeNotFound, "unknown channel %q", c)
	}
	entries, err := p.load(ctx, appID, c)
	if err != nil {
		return nil, err
	}
	kinds := make([]string, len(entries))
	for i, e := range entries {
		kinds[i] = e.Kind
	}
	return kinds, nil
}

// For returns the app's providers for c that serve platform, as one
// failover list: the first healthy one takes each message. Lists are
// rebuilt when the stored configuration changes (checked every few
// seconds), so circuit breakers keep their state in between.
func (p *providerSet) For(ctx context.Context, appID string, c herald.Channel, platform herald.Platform) (herald.Provider, error) {
	list := p.cached(ctx, appID, c)
	if list.err != nil {
		return nil, list.err
	}
	if f, ok := list.byPlatform[platform]; ok {
		return f, nil
	}
	return nil, herald.Errorf(herald.CodeNotFound, "no %s provider serves platform %q", c, platform)
}

// Configured returns every provider of the app's channel list, built from
// its settings, in order (not wrapped for failover): inbound callbacks
// check signatures with their credentials. It shares For's cache.
// Errors: CodeNotFound when the app has no list for the channel.
func (p *providerSet) Configured(ctx context.Context, appID string, c herald.Channel) ([]herald.Provider, error) {
	list := p.cached(ctx, appID, c)
	if list.err != nil {
		return nil, list.err
	}
	return list.members, nil
}

// cached returns the app's built list for c, rebuilt when stale.
func (p *providerSet) cached(ctx context.Context, appID string, c herald.Channel) builtList {
	key := appID + "/" + string(c)
	p.mu.Lock()
	list, ok := p.cache[key]
	p.mu.Unlock()
	if !ok || p.now().Sub(list.loaded) > p.ttl {
		list = p.refresh(ctx, appID, c, list)
		p.mu.Lock()
		p.cache[key] = list
		p.mu.Unlock()
	}
	return list
}

// openCircuits counts the open provider circuits of every list in the
// cache, by provider kind; a kind in use with none open counts 0.
func (p *providerSet) openCircuits() map[string]int {
	p.mu.Lock()
	lists := make([]builtList, 0, len(p.cache))
	for _, l := range p.cache {
		lists = append(lists, l)
	}
	p.mu.Unlock()
	open := map[string]int{}
	for _, l := range lists {
		for _, prov := range l.byPlatform {
			if f, ok := prov.(*failover.Provider); ok {
				f.Circuits(func(kind string, isOpen bool) {
					n := open[kind] // present at 0 for a kind in use
					if isOpen {
						n++
					}
					open[kind] = n
				})
			}
		}
	}
	return open
}

// refresh reloads the sealed list and rebuilds the providers only when it changed.
func (p *providerSet) refresh(ctx context.Context, appID string, c herald.Channel, old builtList) builtList {
	sealed, err := p.store.GetProviderConfig(ctx, appID, c)
	if err != nil {
		return builtList{loaded: p.now(), err: fmt.Errorf("providers: %s list of app %s: %w", c, appID, err)}
	}
	sum := sha256.Sum256(sealed)
	if old.err == nil && old.byPlatform != nil && old.sum == sum {
		old.loaded = p.now()
		return old
	}
	list := builtList{loaded: p.now(), sum: sum}
	entries, err := p.open(sealed, appID, c)
	if err != nil {
		list.err = err
		return list
	}
	var built []builtProvider
	for _, e := range entries {
		k, ok := findKind(e.Kind)
		if !ok {
			continue
		}
		prov, err := k.build(e.Settings, p.env)
		if err != nil {
			list.err = fmt.Errorf("providers: build %s for app %s: %w", e.Kind, appID, err)
			return list
		}
		built = append(built, builtProvider{kind: k, provider: prov, rate: e.RatePerSecond})
	}
	list.byPlatform = map[herald.Platform]herald.Provider{}
	for _, b := range built {
		list.members = append(list.members, b.provider)
	}
	platforms := []herald.Platform{""}
	if c == herald.ChannelPush {
		platforms = []herald.Platform{herald.PlatformIOS, herald.PlatformAndroid, herald.PlatformWeb}
	}
	for _, pl := range platforms {
		var serving []failover.Member
		for _, b := range built {
			if pl == "" || slices.Contains(b.platforms(), pl) {
				serving = append(serving, failover.Member{Provider: b.provider, RatePerSecond: b.rate})
			}
		}
		if len(serving) > 0 {
			list.byPlatform[pl] = failover.NewWithLimits(serving, failover.Options{Cooldown: p.cooldown, Now: p.now, OnState: p.onState})
		}
	}
	return list
}

// platforms are the push platforms a built provider serves: its own
// answer when its settings decide (FCM for iOS), else its kind's.
func (b builtProvider) platforms() []herald.Platform {
	if ps, ok := b.provider.(interface{ Platforms() []herald.Platform }); ok {
		return ps.Platforms()
	}
	return b.kind.platforms
}

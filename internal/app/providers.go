package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	logprovider "github.com/heraldhq/herald/internal/provider/log"
	"github.com/heraldhq/herald/internal/provider/smtp"
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
	return []providerKind{
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

	mu    sync.Mutex
	cache map[string]builtList
}

type builtList struct {
	loaded  time.Time
	entries []builtProvider
	err     error
}

type builtProvider struct {
	kind     providerKind
	provider herald.Provider
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

// For returns the first provider of the app's list for c that serves platform.
func (p *providerSet) For(ctx context.Context, appID string, c herald.Channel, platform herald.Platform) (herald.Provider, error) {
	key := appID + "/" + string(c)
	p.mu.Lock()
	list, ok := p.cache[key]
	p.mu.Unlock()
	if !ok || p.now().Sub(list.loaded) > p.ttl {
		list = p.build(ctx, appID, c)
		p.mu.Lock()
		p.cache[key] = list
		p.mu.Unlock()
	}
	if list.err != nil {
		return nil, list.err
	}
	for _, b := range list.entries {
		if c != herald.ChannelPush || slices.Contains(b.kind.platforms, platform) {
			return b.provider, nil
		}
	}
	return nil, herald.Errorf(herald.CodeNotFound, "no %s provider serves platform %q", c, platform)
}

func (p *providerSet) build(ctx context.Context, appID string, c herald.Channel) builtList {
	list := builtList{loaded: p.now()}
	entries, err := p.load(ctx, appID, c)
	if err != nil {
		list.err = err
		return list
	}
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
		list.entries = append(list.entries, builtProvider{kind: k, provider: prov})
	}
	return list
}

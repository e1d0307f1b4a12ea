package accept

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tmpl"
)

// Templates hands out compiled template versions: tmpl.Library.
type Templates interface {
	// Load returns the version (the latest for 0). CodeNotFound when the
	// app has no such template or version.
	Load(ctx context.Context, appID, name string, version int) (*tmpl.Compiled, error)
}

// templatePlan is what a templated send carries through resolving: the
// compiled template, and the locale of each user met on the way.
type templatePlan struct {
	c *tmpl.Compiled
	// rendered, when c is nil, is the rendering a fan-out resolves
	// subscribers against: it serves the channels of its default variant.
	rendered *herald.Rendering
	locales  map[string]string // user id → the user's locale
}

// serves reports whether the plan (nil for inline content) allows channel c.
func (p *templatePlan) serves(c herald.Channel) bool {
	if p == nil {
		return true
	}
	if p.c == nil {
		v := p.rendered.Variants[p.rendered.Default]
		return c == herald.ChannelEmail && v.Email != nil || c == herald.ChannelSMS && v.SMS != nil ||
			c == herald.ChannelPush && v.Push != nil
	}
	for _, ch := range p.c.Channels() {
		if ch == c {
			return true
		}
	}
	return false
}

func (p *templatePlan) sawUser(u herald.User) {
	if p != nil {
		p.locales[u.ID] = u.Locale
	}
}

// loadTemplate loads the request's template and checks that it has a
// part for every channel asked for.
func (s *Service) loadTemplate(ctx context.Context, appID string, req herald.SendRequest) (*templatePlan, error) {
	if s.templates == nil {
		return nil, herald.Invalid("template", "templates are not available in this process")
	}
	c, err := s.templates.Load(ctx, appID, req.Template, req.TemplateVersion)
	if herald.IsNotFound(err) {
		if req.TemplateVersion != 0 {
			return nil, herald.Invalid("template_version",
				fmt.Sprintf("template %q has no version %d in this app", req.Template, req.TemplateVersion))
		}
		return nil, herald.Invalid("template", fmt.Sprintf("no template %q in this app: save it with PUT /v1/templates/{name}", req.Template))
	}
	if err != nil {
		return nil, fmt.Errorf("accept: template %q: %w", req.Template, err)
	}
	p := &templatePlan{c: c, locales: map[string]string{}}
	var v herald.Validation
	for i, ch := range req.Channels {
		if !p.serves(ch) {
			v.Add(fmt.Sprintf("channels[%d]", i), "template %q has no %s part", req.Template, ch)
		}
	}
	for i, ch := range req.Fallback {
		if !p.serves(ch) {
			v.Add(fmt.Sprintf("fallback[%d]", i), "template %q has no %s part", req.Template, ch)
		}
	}
	return p, v.Err()
}

// render renders the template once for each locale variant the
// deliveries' recipients read: a user's locale picks it, falling back to
// the app's default locale and then the base parts. Direct addresses read
// the default. Any failure (a missing key, the time or size cap) refuses
// the whole request.
//
// A topic's subscribers are not known at acceptance: they all read the
// default variant, which withDefault renders even when no delivery reads it.
func (p *templatePlan) render(appDefault string, deliveries []herald.Delivery, data map[string]any, withDefault bool) (*herald.Rendering, error) {
	r := &herald.Rendering{Name: p.c.Name, Version: p.c.Version, Default: p.c.Variant("", appDefault),
		Variants: map[string]herald.Rendered{}}
	need := func(variant string) error {
		if _, ok := r.Variants[variant]; ok {
			return nil
		}
		out, err := p.c.Render(variant, data)
		if err != nil {
			return err
		}
		r.Variants[variant] = out
		return nil
	}
	if withDefault {
		if err := need(r.Default); err != nil {
			return nil, err
		}
	}
	for _, d := range deliveries {
		variant := r.Default
		if d.UserID != "" {
			if variant = p.c.Variant(p.locales[d.UserID], appDefault); variant != r.Default {
				if r.Users == nil {
					r.Users = map[string]string{}
				}
				r.Users[d.UserID] = variant
			}
		}
		if err := need(variant); err != nil {
			return nil, err
		}
	}
	return r, nil
}

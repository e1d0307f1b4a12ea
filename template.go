package herald

import (
	"context"
	"time"
)

// TemplateParts are a template's sources, one group per channel; a nil
// group means the template has nothing for that channel. Sources use Go
// template syntax: email HTML is rendered with html/template (contextual
// escaping), everything else with text/template.
type TemplateParts struct {
	Email *EmailParts `json:"email,omitempty"`
	SMS   *SMSParts   `json:"sms,omitempty"`
	Push  *PushParts  `json:"push,omitempty"`
}

// EmailParts are the sources of an email.
type EmailParts struct {
	Subject string `json:"subject"`
	HTML    string `json:"html,omitempty"`
	Text    string `json:"text,omitempty"`
}

// SMSParts are the sources of a text message.
type SMSParts struct {
	Text string `json:"text"`
}

// PushParts are the sources of a push (mobile and web): Data's values are
// templates too; URL is where a tap leads; Icon, an icon URL, is shown by
// web push only.
type PushParts struct {
	Title string            `json:"title,omitempty"`
	Body  string            `json:"body,omitempty"`
	URL   string            `json:"url,omitempty"`
	Icon  string            `json:"icon,omitempty"` // web push only
	Data  map[string]string `json:"data,omitempty"`
}

// Channels lists the channels p has a group for, in AllChannels order.
func (p TemplateParts) Channels() []Channel {
	var out []Channel
	for _, c := range AllChannels() {
		if p.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Has reports whether p has a group for channel c.
func (p TemplateParts) Has(c Channel) bool {
	switch c {
	case ChannelEmail:
		return p.Email != nil
	case ChannelSMS:
		return p.SMS != nil
	case ChannelPush:
		return p.Push != nil
	}
	return false
}

// Template is one saved version of an app's named template. Versions are
// immutable: every save makes the next one, and numbers are never reused,
// not even after the template is deleted and saved again.
type Template struct {
	AppID   string
	Name    string
	Version int
	// TemplateParts are the base parts, used for every locale without a
	// variant of its own.
	TemplateParts
	// Locales are per-locale variants (BCP 47 tags as given). A variant
	// replaces the base group of each channel it has; a channel it lacks
	// falls back to the base.
	Locales   map[string]TemplateParts
	CreatedAt time.Time // when this version was saved
}

// Rendered is a template rendered for one locale variant: the content of
// each channel the template has.
type Rendered struct {
	Email *Content `json:"email,omitempty"`
	SMS   *Content `json:"sms,omitempty"`
	Push  *Content `json:"push,omitempty"`
}

// For returns the content of channel c, zero when there is none.
func (r Rendered) For(c Channel) Content {
	var p *Content
	switch c {
	case ChannelEmail:
		p = r.Email
	case ChannelSMS:
		p = r.SMS
	case ChannelPush:
		p = r.Push
	}
	if p == nil {
		return Content{}
	}
	return *p
}

// Rendering records how a notification's content came from a template:
// which version, and its rendering for each locale variant its recipients
// read. It is kept in the log with the notification, so the content a
// delivery sends never changes after the 202, whatever later saves do.
type Rendering struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Default is the variant ("" for the base parts) of direct addresses
	// and of users not listed in Users.
	Default string `json:"default,omitempty"`
	// Users maps a user id to its variant when that is not Default.
	Users map[string]string `json:"users,omitempty"`
	// Variants holds the rendered content by variant.
	Variants map[string]Rendered `json:"variants"`
}

// VariantFor returns the variant that delivery d was rendered in.
func (r *Rendering) VariantFor(d Delivery) string {
	if v, ok := r.Users[d.UserID]; ok && d.UserID != "" {
		return v
	}
	return r.Default
}

// ContentFor returns what delivery d says: the notification's content, or
// for a templated notification the rendering of d's variant and channel.
func (n Notification) ContentFor(d Delivery) Content {
	if n.Template == nil {
		return n.Content
	}
	return n.Template.Variants[n.Template.VariantFor(d)].For(d.Channel)
}

// TemplateStore keeps each app's templates with every saved version.
type TemplateStore interface {
	// PutTemplate saves t's parts as the next version of its name (the
	// first, 1, for a new name) and returns the version. t.Version is
	// ignored. Called by PUT /v1/templates/{name}.
	PutTemplate(ctx context.Context, t Template) (int, error)
	// GetTemplate returns a version of the app's template, or its latest
	// when version is 0. CodeNotFound when the app has no such template
	// (or it was deleted) or no such version.
	GetTemplate(ctx context.Context, appID, name string, version int) (Template, error)
	// LatestTemplateVersion returns the number of the template's latest
	// version: a one-row read, made on every templated send and preview.
	// CodeNotFound when the app has no such template (or it was deleted).
	LatestTemplateVersion(ctx context.Context, appID, name string) (int, error)
	// ListTemplates returns the latest version of each of the app's
	// templates, by name, one page at a time; next is the cursor of the
	// following page, empty on the last. CodeInvalid naming "cursor" for
	// a cursor that is not one of ours.
	ListTemplates(ctx context.Context, appID, cursor string, limit int) (list []Template, next string, err error)
	// DeleteTemplate deletes the template: sends and reads no longer find
	// it, while its versions stay for the notifications that used them.
	// CodeNotFound when the app has no such template.
	DeleteTemplate(ctx context.Context, appID, name string) error
}

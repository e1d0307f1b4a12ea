package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tmpl"
	"github.com/heraldhq/herald/internal/validate"
)

// TemplateLibrary checks, saves and renders templates. It is declared
// here, where it is consumed; the composition root satisfies it with
// internal/tmpl's Library, whose cache the sends share.
type TemplateLibrary interface {
	// Save checks t and stores it as the next version of its name.
	// Called by PUT /v1/templates/{name}. Errors: CodeInvalid naming each
	// offending field (its JSON path in the body) with the line.
	Save(ctx context.Context, t herald.Template) (herald.Template, error)
	// Preview renders a version (the latest for 0) for a recipient of
	// this locale and reports the locale variant ("" for the base parts)
	// and the version it rendered. Called by POST
	// /v1/templates/{name}/preview. Errors: CodeNotFound; CodeInvalid for
	// a missing key ("data.<key>"), the time or size cap.
	Preview(ctx context.Context, appID, name string, version int, locale, appDefault string,
		data map[string]any) (herald.Rendered, string, int, error)
}

// templateBody is the body of PUT /v1/templates/{name}.
type templateBody struct {
	herald.TemplateParts
	Locales map[string]herald.TemplateParts `json:"locales"`
}

type templateResponse struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	herald.TemplateParts
	Locales map[string]herald.TemplateParts `json:"locales,omitempty"`
}

type templateListResponse struct {
	Data       []templateResponse `json:"data"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

type previewRequest struct {
	Data    map[string]any `json:"data"`
	Locale  string         `json:"locale"`
	Version int            `json:"version"`
}

// previewResponse has the shape of the template's parts, rendered.
type previewResponse struct {
	Name    string             `json:"name"`
	Version int                `json:"version"`
	Locale  string             `json:"locale,omitempty"` // the variant rendered; absent for the base parts
	Email   *herald.EmailParts `json:"email,omitempty"`
	SMS     *herald.SMSParts   `json:"sms,omitempty"`
	Push    *herald.PushParts  `json:"push,omitempty"`
}

func toTemplateResponse(t herald.Template) templateResponse {
	return templateResponse{Name: t.Name, Version: t.Version, CreatedAt: t.CreatedAt.UTC(),
		TemplateParts: t.TemplateParts, Locales: t.Locales}
}

func (s *server) templatesOrUnavailable() (TemplateLibrary, error) {
	if s.templates == nil {
		return nil, herald.Errorf(herald.CodeUnavailable, "this process cannot manage templates: it runs without the api role")
	}
	return s.templates, nil
}

// templateName reads the {name} path parameter; a name that could never
// be saved is a 404 for reads and a 422 for a save.
func templateName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := tmpl.CheckName(name); err != nil {
		return "", herald.Invalid("name", err.Error())
	}
	return name, nil
}

func (s *server) putTemplate(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	lib, err := s.templatesOrUnavailable()
	if err != nil {
		return err
	}
	name, err := templateName(r)
	if err != nil {
		return err
	}
	var body templateBody
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	t, err := lib.Save(r.Context(), herald.Template{AppID: caller.AppID, Name: name,
		TemplateParts: body.TemplateParts, Locales: body.Locales})
	if err != nil {
		return fmt.Errorf("httpapi: save template %q: %w", name, err)
	}
	status := http.StatusOK
	if t.Version == 1 {
		status = http.StatusCreated
	}
	s.writeJSON(w, r, status, toTemplateResponse(t))
	return nil
}

func (s *server) getTemplate(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	name := r.PathValue("name")
	version := 0
	if q := r.URL.Query().Get("version"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return herald.Invalid("version", "must be a version number, 1 or more")
		}
		version = n
	}
	if tmpl.CheckName(name) != nil {
		return fmt.Errorf("httpapi: get template %q: %w", name, herald.ErrNotFound)
	}
	t, err := s.store.GetTemplate(r.Context(), caller.AppID, name, version)
	if err != nil {
		return fmt.Errorf("httpapi: get template %q: %w", name, err)
	}
	s.writeJSON(w, r, http.StatusOK, toTemplateResponse(t))
	return nil
}

func (s *server) listTemplates(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var v herald.Validation
	cursor, limit := pageParams(r.URL.Query(), &v)
	if err := v.Err(); err != nil {
		return err
	}
	list, next, err := s.store.ListTemplates(r.Context(), caller.AppID, cursor, limit)
	if err != nil {
		return fmt.Errorf("httpapi: list templates: %w", err)
	}
	out := templateListResponse{Data: make([]templateResponse, 0, len(list)), NextCursor: next}
	for _, t := range list {
		out.Data = append(out.Data, toTemplateResponse(t))
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

func (s *server) deleteTemplate(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	name := r.PathValue("name")
	if tmpl.CheckName(name) != nil {
		return fmt.Errorf("httpapi: delete template %q: %w", name, herald.ErrNotFound)
	}
	if err := s.store.DeleteTemplate(r.Context(), caller.AppID, name); err != nil {
		return fmt.Errorf("httpapi: delete template %q: %w", name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) previewTemplate(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	lib, err := s.templatesOrUnavailable()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if tmpl.CheckName(name) != nil {
		return fmt.Errorf("httpapi: preview template %q: %w", name, herald.ErrNotFound)
	}
	var req previewRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var v herald.Validation
	if req.Locale != "" {
		if err := tmpl.CheckLocale(req.Locale); err != nil {
			v.Add("locale", "%v", err)
		}
	}
	if req.Version < 0 {
		v.Add("version", "must be a version number, 1 or more")
	}
	if err := v.Err(); err != nil {
		return err
	}
	app, err := s.store.GetApp(r.Context(), caller.AppID)
	if err != nil {
		return fmt.Errorf("httpapi: preview template %q: %w", name, err)
	}
	rendered, variant, version, err := lib.Preview(r.Context(), caller.AppID, name, req.Version, req.Locale, app.DefaultLocale, req.Data)
	if err != nil {
		return fmt.Errorf("httpapi: preview template %q: %w", name, err)
	}
	out := previewResponse{Name: name, Version: version, Locale: variant}
	if c := rendered.Email; c != nil {
		out.Email = &herald.EmailParts{Subject: c.Subject, HTML: c.HTML, Text: c.Body}
	}
	if c := rendered.SMS; c != nil {
		out.SMS = &herald.SMSParts{Text: c.Body}
	}
	if c := rendered.Push; c != nil {
		out.Push = &herald.PushParts{Title: c.Title, Body: c.Body, URL: c.URL, Icon: c.Icon, Data: c.Data}
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// appResponse is the calling key's app.
type appResponse struct {
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	DefaultLocale       string    `json:"default_locale"`
	SMSAllowedCountries []string  `json:"sms_allowed_countries"`
	SMSDailyBudget      int       `json:"sms_daily_budget"`
	CreatedAt           time.Time `json:"created_at"`
}

// appSettingsRequest is PUT /v1/app. The SMS guard's fields are left as
// they are when absent, so that a client that only sets default_locale
// never turns the guard off.
type appSettingsRequest struct {
	DefaultLocale       string    `json:"default_locale"`
	SMSAllowedCountries *[]string `json:"sms_allowed_countries"`
	SMSDailyBudget      *int      `json:"sms_daily_budget"`
}

// maxSMSBudget bounds sms_daily_budget: beyond it a budget guards nothing.
const maxSMSBudget = 100_000_000

func (s *server) getApp(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	a, err := s.store.GetApp(r.Context(), caller.AppID)
	if err != nil {
		return fmt.Errorf("httpapi: get app: %w", err)
	}
	s.writeJSON(w, r, http.StatusOK, newAppResponse(a))
	return nil
}

func newAppResponse(a herald.App) appResponse {
	countries := a.SMSAllowedCountries
	if countries == nil {
		countries = []string{} // the schema's array, never null
	}
	return appResponse{ID: a.ID, Name: a.Name, DefaultLocale: a.DefaultLocale,
		SMSAllowedCountries: countries, SMSDailyBudget: a.SMSDailyBudget, CreatedAt: a.CreatedAt.UTC()}
}

func (s *server) putApp(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var req appSettingsRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var v herald.Validation
	if req.DefaultLocale != "" {
		if err := tmpl.CheckLocale(req.DefaultLocale); err != nil {
			v.Add("default_locale", "%v", err)
		}
	}
	var countries []string
	if req.SMSAllowedCountries != nil {
		if len(*req.SMSAllowedCountries) > 300 {
			v.Add("sms_allowed_countries", "at most 300 countries")
		}
		for i, c := range *req.SMSAllowedCountries {
			u, err := validate.SMSCountry(c)
			if err != nil {
				v.Add(fmt.Sprintf("sms_allowed_countries[%d]", i), "%v", err)
			} else if !slices.Contains(countries, u) {
				countries = append(countries, u)
			}
		}
	}
	if b := req.SMSDailyBudget; b != nil && (*b < 0 || *b > maxSMSBudget) {
		v.Add("sms_daily_budget", "must be 0 (no budget) to %d", maxSMSBudget)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := s.store.SetAppDefaultLocale(r.Context(), caller.AppID, req.DefaultLocale); err != nil {
		return fmt.Errorf("httpapi: set default locale: %w", err)
	}
	if req.SMSAllowedCountries != nil || req.SMSDailyBudget != nil {
		a, err := s.store.GetApp(r.Context(), caller.AppID)
		if err != nil {
			return fmt.Errorf("httpapi: get app: %w", err)
		}
		g := herald.SMSGuard{AllowedCountries: a.SMSAllowedCountries, DailyBudget: a.SMSDailyBudget}
		if req.SMSAllowedCountries != nil {
			g.AllowedCountries = countries
		}
		if req.SMSDailyBudget != nil {
			g.DailyBudget = *req.SMSDailyBudget
		}
		if err := s.store.SetAppSMSGuard(r.Context(), caller.AppID, g); err != nil {
			return fmt.Errorf("httpapi: set sms guard: %w", err)
		}
	}
	return s.getApp(w, r, caller)
}

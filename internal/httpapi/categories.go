package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// maxCapMax bounds a frequency cap's max: the limiters remember each
// counted delivery of a window.
const maxCapMax = 100_000

type categoryBody struct {
	Critical      bool                `json:"critical"`
	FrequencyCaps []frequencyCapBody  `json:"frequency_caps"`
	Digest        *categoryDigestBody `json:"digest"`
}

type frequencyCapBody struct {
	Channel string `json:"channel"`
	Max     int    `json:"max"`
	Per     string `json:"per"`
	Over    string `json:"over"`
}

type categoryDigestBody struct {
	Window   string `json:"window"`
	Template string `json:"template"`
}

type categoryResponse struct {
	Name          string              `json:"name"`
	Critical      bool                `json:"critical"`
	FrequencyCaps []frequencyCapBody  `json:"frequency_caps"`
	Digest        *categoryDigestBody `json:"digest,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
}

type categoryList struct {
	Data []categoryResponse `json:"data"`
}

func toCategoryResponse(c herald.Category) categoryResponse {
	out := categoryResponse{Name: c.Name, Critical: c.Critical, FrequencyCaps: []frequencyCapBody{},
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for _, fc := range c.FrequencyCaps {
		out.FrequencyCaps = append(out.FrequencyCaps, frequencyCapBody{Channel: string(fc.Channel), Max: fc.Max,
			Per: fc.Per.String(), Over: fc.Over})
	}
	if c.Digest != nil {
		out.Digest = &categoryDigestBody{Window: c.Digest.Window.String(), Template: c.Digest.Template}
	}
	return out
}

// categoryFromBody validates the body and converts it to the domain.
func categoryFromBody(appID, name string, b categoryBody) (herald.Category, error) {
	var v herald.Validation
	if err := validate.Category(name); err != nil {
		v.Add("name", "%v", err)
	}
	c := herald.Category{AppID: appID, Name: name, Critical: b.Critical}
	for i, fb := range b.FrequencyCaps {
		field := fmt.Sprintf("frequency_caps[%d].", i)
		fc := herald.FrequencyCap{Channel: herald.Channel(fb.Channel), Max: fb.Max, Over: fb.Over}
		if !fc.Channel.Valid() {
			v.Add(field+"channel", "is not a channel; use push, email or sms")
		}
		if fb.Max < 1 || fb.Max > maxCapMax {
			v.Add(field+"max", "must be 1 to %d", maxCapMax)
		}
		per, err := time.ParseDuration(fb.Per)
		switch {
		case err != nil:
			v.Add(field+"per", "must be a duration such as \"1m\", \"24h\" or \"168h\"")
		case per < herald.MinCapPeriod || per > herald.MaxCapPeriod:
			v.Add(field+"per", "must be between 1s and 744h (31 days)")
		}
		fc.Per = per
		switch fb.Over {
		case "":
			fc.Over = herald.CapSuppress
		case herald.CapSuppress, herald.CapDefer:
		default:
			v.Add(field+"over", "must be suppress or defer")
		}
		c.FrequencyCaps = append(c.FrequencyCaps, fc)
	}
	if b.Digest != nil {
		window, err := time.ParseDuration(b.Digest.Window)
		if err != nil || window < time.Minute || window > herald.MaxCapPeriod {
			v.Add("digest.window", "must be a duration between 1m and 744h (31 days)")
		}
		if b.Digest.Template == "" {
			v.Add("digest.template", "is required")
		}
		c.Digest = &herald.Digest{Window: window, Template: b.Digest.Template}
	}
	return c, v.Err()
}

func (s *server) putCategory(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var body categoryBody
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	c, err := categoryFromBody(caller.AppID, r.PathValue("name"), body)
	if err != nil {
		return err
	}
	c.UpdatedAt = s.now().UTC()
	got, created, err := s.store.PutCategory(r.Context(), c)
	if err != nil {
		return fmt.Errorf("httpapi: put category %q: %w", c.Name, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.writeJSON(w, r, status, toCategoryResponse(got))
	return nil
}

func (s *server) getCategory(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	c, err := s.store.GetCategory(r.Context(), caller.AppID, r.PathValue("name"))
	if err != nil {
		return fmt.Errorf("httpapi: get category %q: %w", r.PathValue("name"), err)
	}
	s.writeJSON(w, r, http.StatusOK, toCategoryResponse(c))
	return nil
}

func (s *server) listCategories(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	list, err := s.store.ListCategories(r.Context(), caller.AppID)
	if err != nil {
		return fmt.Errorf("httpapi: list categories: %w", err)
	}
	out := categoryList{Data: []categoryResponse{}}
	for _, c := range list {
		out.Data = append(out.Data, toCategoryResponse(c))
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

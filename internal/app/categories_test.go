package app_test

import (
	"slices"
	"testing"
)

type categoryView struct {
	Name          string `json:"name"`
	Critical      bool   `json:"critical"`
	FrequencyCaps []struct {
		Channel string `json:"channel"`
		Max     int    `json:"max"`
		Per     string `json:"per"`
		Over    string `json:"over"`
	} `json:"frequency_caps"`
}

// TestCategoriesAPI: a category is created (201), replaced (200), read and
// listed; each invalid field is 422 naming it; another app sees none.
func TestCategoriesAPI(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	caps := []map[string]any{{"channel": "push", "max": 3, "per": "24h", "over": "suppress"},
		{"channel": "sms", "max": 1, "per": "1m", "over": "defer"}}
	c.must(201, "PUT", "/v1/categories/marketing", map[string]any{"critical": false, "frequency_caps": caps,
		"digest": map[string]any{"window": "1h", "template": "daily-digest"}})
	var got categoryView
	c.must(200, "PUT", "/v1/categories/marketing", map[string]any{"frequency_caps": caps[1:]}).decode(t, &got)
	if len(got.FrequencyCaps) != 1 || got.FrequencyCaps[0].Per != "1m0s" || got.FrequencyCaps[0].Over != "defer" {
		t.Fatalf("replaced category = %+v", got)
	}
	c.must(201, "PUT", "/v1/categories/alerts", map[string]any{"critical": true, "frequency_caps": []any{map[string]any{"channel": "email", "max": 5, "per": "1h"}}})
	c.must(200, "GET", "/v1/categories/alerts", nil).decode(t, &got)
	if !got.Critical || got.FrequencyCaps[0].Over != "suppress" {
		t.Fatalf("alerts = %+v, want critical with over defaulting to suppress", got)
	}
	var list struct{ Data []categoryView }
	c.must(200, "GET", "/v1/categories", nil).decode(t, &list)
	var names []string
	for _, cv := range list.Data {
		names = append(names, cv.Name)
	}
	if !slices.Equal(names, []string{"alerts", "marketing"}) {
		t.Fatalf("listed %v", names)
	}

	other := newAPI(t, a, newApp(t, a, "other"))
	other.must(404, "GET", "/v1/categories/alerts", nil)

	for _, tt := range []struct {
		name  string
		capv  map[string]any
		field string
	}{
		{"channel", map[string]any{"channel": "fax", "max": 1, "per": "1h"}, "frequency_caps[0].channel"},
		{"max zero", map[string]any{"channel": "push", "max": 0, "per": "1h"}, "frequency_caps[0].max"},
		{"per unparsable", map[string]any{"channel": "push", "max": 1, "per": "daily"}, "frequency_caps[0].per"},
		{"per too short", map[string]any{"channel": "push", "max": 1, "per": "500ms"}, "frequency_caps[0].per"},
		{"per too long", map[string]any{"channel": "push", "max": 1, "per": "745h"}, "frequency_caps[0].per"},
		{"over", map[string]any{"channel": "push", "max": 1, "per": "1h", "over": "drop"}, "frequency_caps[0].over"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.must(422, "PUT", "/v1/categories/marketing", map[string]any{"frequency_caps": []any{tt.capv}})
			var p problem
			r.decode(t, &p)
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
				t.Fatalf("errors = %+v, want one naming %s", p.Errors, tt.field)
			}
		})
	}
}

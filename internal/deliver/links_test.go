package deliver_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/tracklink"
)

// TestEmailCarriesListUnsubscribeUnlessCritical: with tracking links, an
// email goes out with List-Unsubscribe on the public URL, except in a
// category the app marks critical.
func TestEmailCarriesListUnsubscribeUnlessCritical(t *testing.T) {
	links, err := tracklink.New("https://herald.example.com", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		critical func(ctx context.Context, appID, category string) bool
		want     bool
	}{
		{"no category is critical", nil, true},
		{"another category is critical", func(_ context.Context, _, category string) bool { return category == "security" }, true},
		{"its category is critical", func(_ context.Context, _, category string) bool { return category == "transactional" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, deliver.Options{Links: links, Critical: c.critical})
			d := f.accepted(t)
			if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
				t.Fatalf("verdict = %+v, want ack", v)
			}
			got := f.smtpd.Messages()[0].Header
			list := got.Get("List-Unsubscribe")
			if has := list != ""; has != c.want {
				t.Fatalf("List-Unsubscribe = %q, want it present: %v", list, c.want)
			}
			if !c.want {
				return
			}
			token := strings.TrimSuffix(strings.TrimPrefix(list, "<https://herald.example.com/u/"), ">")
			target, err := links.Parse(tracklink.KindUnsubscribe, token)
			if err != nil || target.AppID != f.appID || target.DeliveryID != d.ID {
				t.Errorf("List-Unsubscribe %q names %+v (%v), want this delivery", list, target, err)
			}
			if got.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q", got.Get("List-Unsubscribe-Post"))
			}
		})
	}
}

package storetest

import (
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// testCategories: a category round-trips with its caps and digest, a
// second put replaces it keeping its creation time, and each app sees
// only its own.
func testCategories(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	first := now()
	c := herald.Category{AppID: a.ID, Name: "marketing", Critical: false, UpdatedAt: first,
		FrequencyCaps: []herald.FrequencyCap{
			{Channel: herald.ChannelPush, Max: 3, Per: 24 * time.Hour, Over: herald.CapSuppress},
			{Channel: herald.ChannelSMS, Max: 1, Per: time.Minute, Over: herald.CapDefer},
		},
		Digest: &herald.Digest{Window: time.Hour, Template: "daily-digest"}}
	got, created, err := s.PutCategory(ctx, c)
	must(t, err)
	if !created {
		t.Error("first put: created = false")
	}
	want := c
	want.CreatedAt = first
	diff(t, "put category", got, want)
	got, err = s.GetCategory(ctx, a.ID, "marketing")
	must(t, err)
	diff(t, "get category", got, want)

	later := first.Add(time.Second)
	c2 := herald.Category{AppID: a.ID, Name: "marketing", Critical: true, UpdatedAt: later}
	got, created, err = s.PutCategory(ctx, c2)
	must(t, err)
	if created {
		t.Error("second put: created = true")
	}
	diff(t, "replaced category", got, herald.Category{AppID: a.ID, Name: "marketing", Critical: true, CreatedAt: first, UpdatedAt: later})

	_, _, err = s.PutCategory(ctx, herald.Category{AppID: a.ID, Name: "alerts", UpdatedAt: later})
	must(t, err)
	list, err := s.ListCategories(ctx, a.ID)
	must(t, err)
	if len(list) != 2 || list[0].Name != "alerts" || list[1].Name != "marketing" {
		t.Fatalf("list = %+v, want alerts and marketing by name", list)
	}

	_, err = s.GetCategory(ctx, other.ID, "marketing")
	wantCode(t, err, herald.CodeNotFound)
	list, err = s.ListCategories(ctx, other.ID)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("another app lists %+v", list)
	}
}

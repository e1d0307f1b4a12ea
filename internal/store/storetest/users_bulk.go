package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// testPutUsers: a bulk put creates and updates as PutUser does, in one go.
func testPutUsers(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	t0 := now().Add(-time.Hour)
	var first []herald.User
	for i := range 3 {
		first = append(first, herald.User{AppID: a.ID, ID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@example.com", i),
			Timezone: "Europe/Paris", Attributes: map[string]any{"plan": "pro"}, CreatedAt: t0})
	}
	created, err := s.PutUsers(ctx, first)
	must(t, err)
	diff(t, "created by the first put", created, 3)
	must(t, s.SetContactStatus(ctx, a.ID, "u1", herald.ChannelEmail, herald.DeviceInvalid))

	t1 := now()
	second := []herald.User{
		{AppID: a.ID, ID: "u1", Email: "new@example.com", Phone: "+14155550100", UpdatedAt: t1},
		{AppID: a.ID, ID: "u3", Email: "u3@example.com", CreatedAt: t1},
	}
	created, err = s.PutUsers(ctx, second)
	must(t, err)
	diff(t, "created by the second put", created, 1)
	u1, err := s.GetUser(ctx, a.ID, "u1")
	must(t, err)
	if u1.Email != "new@example.com" || u1.Phone != "+14155550100" || u1.Timezone != "" || u1.Attributes != nil ||
		!u1.CreatedAt.Equal(t0) || !u1.UpdatedAt.Equal(t1) || u1.EmailStatus != herald.DeviceInvalid {
		t.Errorf("updated user = %+v; want the new profile, its first CreatedAt and its contact status kept", u1)
	}
	u2, err := s.GetUser(ctx, a.ID, "u2")
	must(t, err)
	if u2.Email != "u2@example.com" || u2.Attributes["plan"] != "pro" {
		t.Errorf("untouched user = %+v", u2)
	}
	created, err = s.PutUsers(ctx, nil)
	must(t, err)
	diff(t, "created by an empty put", created, 0)
}

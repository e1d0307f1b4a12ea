package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// testUserContacts: one bulk read gives, for each user of the app among
// the ids, what GetUser, GetPreferences and ListDevices give; ids that are
// not the app's users are absent, and nothing of another app leaks in.
func testUserContacts(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now()
	put := func(u herald.User) {
		t.Helper()
		u.CreatedAt, u.UpdatedAt = t0, t0
		_, _, err := s.PutUser(ctx, u)
		must(t, err)
	}
	addDevice := func(d herald.Device) herald.Device {
		t.Helper()
		d.ID, d.Status = newID(), herald.DeviceActive
		got, err := s.AddDevice(ctx, d)
		must(t, err)
		return got
	}

	// ada: every contact, preferences, an active and an invalid device.
	put(herald.User{AppID: a.ID, ID: "ada", Email: "ada@example.com", Phone: "+14155550100", Locale: "fr-FR",
		Timezone: "Europe/Paris", Attributes: map[string]any{"plan": "pro"}})
	adaPrefs := herald.Preferences{Channels: map[herald.Channel]bool{herald.ChannelSMS: false},
		Categories: map[string]map[herald.Channel]bool{"marketing": {herald.ChannelPush: false}}}
	must(t, s.PutPreferences(ctx, a.ID, "ada", adaPrefs))
	ios := addDevice(herald.Device{AppID: a.ID, UserID: "ada", Platform: herald.PlatformIOS, Token: "apns-ada", CreatedAt: t0})
	sub := &herald.WebPushSubscription{Endpoint: "https://push.example/ada"}
	sub.Keys.P256dh, sub.Keys.Auth = "p256", "auth"
	web := addDevice(herald.Device{AppID: a.ID, UserID: "ada", Platform: herald.PlatformWeb, Token: sub.Endpoint,
		Subscription: sub, CreatedAt: t0.Add(time.Second)})
	must(t, s.SetDeviceStatus(ctx, a.ID, web.ID, herald.DeviceInvalid))
	web.Status = herald.DeviceInvalid
	// bob: an email a provider rejected, no preferences, no device.
	put(herald.User{AppID: a.ID, ID: "bob", Email: "bob@example.com"})
	must(t, s.SetContactStatus(ctx, a.ID, "bob", herald.ChannelEmail, herald.DeviceInvalid))
	// cy: a phone only, preferences, a device.
	put(herald.User{AppID: a.ID, ID: "cy", Phone: "+14155550102"})
	must(t, s.PutPreferences(ctx, a.ID, "cy", herald.Preferences{Unsubscribed: true}))
	cyDevice := addDevice(herald.Device{AppID: a.ID, UserID: "cy", Platform: herald.PlatformAndroid, Token: "fcm-cy", CreatedAt: t0})
	// Another app has its own ada, and a zed that app a lacks.
	put(herald.User{AppID: b.ID, ID: "ada", Email: "other-ada@example.com"})
	must(t, s.PutPreferences(ctx, b.ID, "ada", herald.Preferences{Unsubscribed: true}))
	addDevice(herald.Device{AppID: b.ID, UserID: "ada", Platform: herald.PlatformAndroid, Token: "fcm-other-ada", CreatedAt: t0})
	put(herald.User{AppID: b.ID, ID: "zed", Email: "zed@example.com"})

	got, err := s.GetUserContacts(ctx, a.ID, []string{"ada", "bob", "nobody", "cy", "zed", "ada"})
	must(t, err)
	want := map[string]herald.UserContacts{}
	for _, id := range []string{"ada", "bob", "cy"} {
		u, err := s.GetUser(ctx, a.ID, id)
		must(t, err)
		p, err := s.GetPreferences(ctx, a.ID, id)
		must(t, err)
		ds, err := s.ListDevices(ctx, a.ID, id)
		must(t, err)
		if len(ds) == 0 {
			ds = nil
		}
		want[id] = herald.UserContacts{User: u, Preferences: p, Devices: ds}
	}
	diff(t, "contacts, against the one-user reads", got, want)
	// The one-user reads are checked elsewhere; these pin what this test set up.
	if ada := got["ada"]; ada.User.Email != "ada@example.com" || ada.User.Locale != "fr-FR" ||
		ada.Preferences.Channels[herald.ChannelSMS] || len(ada.Devices) != 2 {
		t.Errorf("ada = %+v; want app a's ada, sms off, two devices", ada)
	}
	diff(t, "ada's devices, oldest first", got["ada"].Devices, []herald.Device{ios, web})
	if bob := got["bob"]; bob.User.EmailStatus != herald.DeviceInvalid || bob.Devices != nil ||
		bob.Preferences.Channels != nil || bob.Preferences.Unsubscribed {
		t.Errorf("bob = %+v; want an invalid email, no devices, default preferences", bob)
	}
	diff(t, "cy's devices", got["cy"].Devices, []herald.Device{cyDevice})
	diff(t, "cy unsubscribed", got["cy"].Preferences.Unsubscribed, true)

	got, err = s.GetUserContacts(ctx, b.ID, []string{"ada", "bob"})
	must(t, err)
	if len(got) != 1 || got["ada"].User.Email != "other-ada@example.com" || !got["ada"].Preferences.Unsubscribed ||
		len(got["ada"].Devices) != 1 || got["ada"].Devices[0].Token != "fcm-other-ada" {
		t.Errorf("app b's contacts = %+v; want only its own ada", got)
	}

	for _, ids := range [][]string{nil, {}, {"nobody"}} {
		got, err = s.GetUserContacts(ctx, a.ID, ids)
		must(t, err)
		diff(t, fmt.Sprintf("contacts of %q", ids), len(got), 0)
	}
}

// testUserContactsChunked: more ids than one query takes are read in
// chunks, and an id repeated in two chunks still has its devices once.
func testUserContactsChunked(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	t0 := now()
	n := storeutil.MaxIDsPerRead + 20
	users := make([]herald.User, n)
	for i := range users {
		users[i] = herald.User{AppID: a.ID, ID: fmt.Sprintf("u%04d", i), Email: fmt.Sprintf("u%04d@example.com", i),
			CreatedAt: t0, UpdatedAt: t0}
	}
	_, err := s.PutUsers(ctx, users)
	must(t, err)
	withDevice := []int{0, storeutil.MaxIDsPerRead - 1, storeutil.MaxIDsPerRead, n - 1}
	for _, i := range withDevice {
		_, err := s.AddDevice(ctx, herald.Device{AppID: a.ID, ID: newID(), UserID: users[i].ID, Platform: herald.PlatformIOS,
			Token: "tok-" + users[i].ID, Status: herald.DeviceActive, CreatedAt: t0})
		must(t, err)
	}
	// Missing ids between the users, and the first user again at the end.
	var ids []string
	for i, u := range users {
		ids = append(ids, u.ID)
		if i%100 == 0 {
			ids = append(ids, fmt.Sprintf("missing%04d", i))
		}
	}
	ids = append(ids, users[0].ID)

	got, err := s.GetUserContacts(ctx, a.ID, ids)
	must(t, err)
	diff(t, "users read", len(got), n)
	for _, u := range users {
		c, ok := got[u.ID]
		if !ok || c.User.Email != u.Email {
			t.Fatalf("user %q = %+v, %v; want it read", u.ID, c, ok)
		}
	}
	for _, i := range withDevice {
		ds := got[users[i].ID].Devices
		if len(ds) != 1 || ds[0].Token != "tok-"+users[i].ID {
			t.Errorf("devices of %q = %+v; want its one device", users[i].ID, ds)
		}
	}
	if ds := got[users[1].ID].Devices; ds != nil {
		t.Errorf("devices of %q = %+v; want none", users[1].ID, ds)
	}
}

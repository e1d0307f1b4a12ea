// Package storetest is the conformance suite every herald.Store runs: the
// SQLite and Postgres stores must behave identically, and this suite is
// where "identically" is written down (riverdrivertest is the model).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/heraldhq/herald"
)

// Run runs the suite. open must return a fresh, empty, migrated store for
// each call and close it (and drop what it created) in t.Cleanup; subtests
// call it in parallel.
func Run(t *testing.T, open func(t *testing.T) herald.Store) {
	groups := []struct {
		name string
		test func(t *testing.T, s herald.Store)
	}{
		{"Apps", testApps},
		{"SMSGuard", testSMSGuard},
		{"SMSBudgetConcurrent", testSMSBudgetConcurrent},
		{"Keys", testKeys},
		{"KeyLifecycle", testKeyLifecycle},
		{"Users", testUsers},
		{"PutUsers", testPutUsers},
		{"UserContacts", testUserContacts},
		{"UserContactsChunked", testUserContactsChunked},
		{"Devices", testDevices},
		{"Preferences", testPreferences},
		{"ProviderConfigs", testProviderConfigs},
		{"ApplyRoundTrip", testApplyRoundTrip},
		{"ApplyConflict", testApplyConflict},
		{"Transitions", testTransitions},
		{"TransitionsInBulk", testTransitionsInBulk},
		{"TransitionSteps", testTransitionSteps},
		{"DeliveryWork", testDeliveryWork},
		{"DeliveryByProviderMessage", testDeliveryByProviderMessage},
		{"LogIsolation", testLogIsolation},
		{"ListNotifications", testListNotifications},
		{"ListDeadLetters", testListDeadLetters},
		{"StaleAndPostpone", testStaleAndPostpone},
		{"ConcurrentApply", testConcurrentApply},
		{"Leases", testLeases},
		{"IdempotencySweep", testIdempotencySweep},
		{"Webhooks", testWebhooks},
		{"WebhookPosts", testWebhookPosts},
		{"Analytics", testAnalytics},
		{"Activity", testActivity},
		{"Templates", testTemplates},
		{"TemplatedNotification", testTemplatedNotification},
		{"Categories", testCategories},
		{"Topics", testTopics},
		{"Fanout", testFanout},
		{"FallbackStep", testFallbackStep},
		{"ConcurrentFallbackSteps", testConcurrentFallbackSteps},
		{"OverdueFallbacks", testOverdueFallbacks},
		{"PingClose", testPingClose},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.test(t, open(t))
		})
	}
}

// now is the current time as callers hand it to a store: UTC, truncated to
// the microsecond that both dialects keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func wantCode(t *testing.T, err error, code herald.Code) {
	t.Helper()
	if got := herald.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
	if code == herald.CodeNotFound && !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("errors.Is(%v, herald.ErrNotFound) = false", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func createApp(t *testing.T, s herald.Store) herald.App {
	t.Helper()
	a := herald.App{ID: newID(), Name: "app", CreatedAt: now()}
	must(t, s.CreateApp(t.Context(), a))
	return a
}

func putUser(t *testing.T, s herald.Store, appID, userID string) herald.User {
	t.Helper()
	at := now()
	u, _, err := s.PutUser(t.Context(), herald.User{AppID: appID, ID: userID, Email: userID + "@example.com", CreatedAt: at, UpdatedAt: at})
	must(t, err)
	return u
}

func testApps(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := herald.App{ID: newID(), Name: "Acme", CreatedAt: now()}
	must(t, s.CreateApp(ctx, a))
	got, err := s.GetApp(ctx, a.ID)
	must(t, err)
	diff(t, "app", got, a)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at location = %v, want UTC", got.CreatedAt.Location())
	}
	wantCode(t, s.CreateApp(ctx, herald.App{ID: a.ID, Name: "again", CreatedAt: now()}), herald.CodeConflict)
	_, err = s.GetApp(ctx, newID())
	wantCode(t, err, herald.CodeNotFound)

	must(t, s.SetAppDefaultLocale(ctx, a.ID, "de"))
	got, err = s.GetApp(ctx, a.ID)
	must(t, err)
	if got.DefaultLocale != "de" {
		t.Errorf("default locale = %q, want de", got.DefaultLocale)
	}
	wantCode(t, s.SetAppDefaultLocale(ctx, newID(), "de"), herald.CodeNotFound)
	b := herald.App{ID: newID(), Name: "Other", DefaultLocale: "fr", CreatedAt: now()}
	must(t, s.CreateApp(ctx, b))
	got, err = s.GetApp(ctx, b.ID)
	must(t, err)
	diff(t, "app with a locale", got, b)
}

func testSMSGuard(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	got, err := s.GetApp(ctx, a.ID)
	must(t, err)
	if len(got.SMSAllowedCountries) != 0 || got.SMSDailyBudget != 0 {
		t.Errorf("a new app's sms guard = %v, %d; want none", got.SMSAllowedCountries, got.SMSDailyBudget)
	}
	must(t, s.SetAppSMSGuard(ctx, a.ID, herald.SMSGuard{AllowedCountries: []string{"DE", "US"}, DailyBudget: 10}))
	got, err = s.GetApp(ctx, a.ID)
	must(t, err)
	diff(t, "sms countries", got.SMSAllowedCountries, []string{"DE", "US"})
	if got.SMSDailyBudget != 10 {
		t.Errorf("sms budget = %d, want 10", got.SMSDailyBudget)
	}
	wantCode(t, s.SetAppSMSGuard(ctx, newID(), herald.SMSGuard{DailyBudget: 1}), herald.CodeNotFound)

	// A budget of 10: 7 fit, the 8th warns, 3 more do not fit and
	// alert, 2 still fit, and the 11th is refused without a second alert.
	steps := []struct {
		n    int
		want herald.SMSBudgetUse
	}{
		{7, herald.SMSBudgetUse{Used: 7, Reserved: true}},
		{1, herald.SMSBudgetUse{Used: 8, Reserved: true, Warn: true}},
		{3, herald.SMSBudgetUse{Used: 8, Exceeded: true}},
		{2, herald.SMSBudgetUse{Used: 10, Reserved: true}},
		{1, herald.SMSBudgetUse{Used: 10}},
	}
	for i, st := range steps {
		use, err := s.ReserveSMS(ctx, a.ID, "2026-11-28", st.n, 10)
		must(t, err)
		if use != st.want {
			t.Errorf("step %d: reserve %d = %+v, want %+v", i, st.n, use, st.want)
		}
	}
	// Another day and another app count from zero; a refusal as the first
	// thing of the day alerts once.
	use, err := s.ReserveSMS(ctx, a.ID, "2026-11-29", 11, 10)
	must(t, err)
	if want := (herald.SMSBudgetUse{Used: 0, Exceeded: true}); use != want {
		t.Errorf("next day, 11 of 10 = %+v, want %+v", use, want)
	}
	b := createApp(t, s)
	use, err = s.ReserveSMS(ctx, b.ID, "2026-11-28", 1, 10)
	must(t, err)
	if want := (herald.SMSBudgetUse{Used: 1, Reserved: true}); use != want {
		t.Errorf("other app = %+v, want %+v", use, want)
	}
}

// testSMSBudgetConcurrent reserves from many goroutines at once: exactly
// the budget is reserved, and each alert fires once.
func testSMSBudgetConcurrent(t *testing.T, s herald.Store) {
	a := createApp(t, s)
	const budget, tries = 25, 40
	var mu sync.Mutex
	reserved, warns, exceeded := 0, 0, 0
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			use, err := s.ReserveSMS(t.Context(), a.ID, "2026-11-28", 1, budget)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if use.Reserved {
				reserved++
			}
			if use.Warn {
				warns++
			}
			if use.Exceeded {
				exceeded++
			}
		})
	}
	wg.Wait()
	if reserved != budget || warns != 1 || exceeded != 1 {
		t.Errorf("reserved %d, warnings %d, exceeded alerts %d; want %d, 1, 1", reserved, warns, exceeded, budget)
	}
}

func testKeys(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	k := herald.APIKey{ID: newID(), AppID: a.ID, Name: "ci", Scope: herald.ScopeSend, Prefix: "hk_12345",
		Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: now()}
	must(t, s.CreateKey(ctx, k))
	got, err := s.KeyByHash(ctx, k.Hash)
	must(t, err)
	diff(t, "key", got, k)

	dupID := k
	dupID.Hash = []byte("another hash")
	wantCode(t, s.CreateKey(ctx, dupID), herald.CodeConflict)
	dupHash := k
	dupHash.ID = newID()
	wantCode(t, s.CreateKey(ctx, dupHash), herald.CodeConflict)
	_, err = s.KeyByHash(ctx, []byte("unknown"))
	wantCode(t, err, herald.CodeNotFound)

	// Another app can neither see nor revoke the key.
	wantCode(t, s.RevokeKey(ctx, b.ID, k.ID, now()), herald.CodeNotFound)
	if _, err := s.KeyByHash(ctx, k.Hash); err != nil {
		t.Fatalf("key revoked through another app: %v", err)
	}
	must(t, s.RevokeKey(ctx, a.ID, k.ID, now()))
	_, err = s.KeyByHash(ctx, k.Hash)
	wantCode(t, err, herald.CodeNotFound)
	wantCode(t, s.RevokeKey(ctx, a.ID, k.ID, now()), herald.CodeNotFound)
	wantCode(t, s.RevokeKey(ctx, a.ID, newID(), now()), herald.CodeNotFound)

	// A key stored already revoked is never live.
	at := now()
	dead := herald.APIKey{ID: newID(), AppID: a.ID, Name: "old", Scope: herald.ScopeAdmin, Prefix: "hk_dead",
		Hash: []byte("dead"), CreatedAt: at, RevokedAt: &at}
	must(t, s.CreateKey(ctx, dead))
	_, err = s.KeyByHash(ctx, dead.Hash)
	wantCode(t, err, herald.CodeNotFound)
}

// testKeyLifecycle covers expiry, listing, rotation, rehashing and the
// last use of keys.
func testKeyLifecycle(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now()
	in := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	old := herald.APIKey{ID: newID(), AppID: a.ID, Name: "ci", Scope: herald.ScopeSend, Prefix: "hrd_s_old000",
		Hash: []byte("old hash"), CreatedAt: t0.Add(-time.Hour)}
	expiring := herald.APIKey{ID: newID(), AppID: a.ID, Name: "temp", Scope: herald.ScopeAdmin, Prefix: "hrd_a_tmp000",
		Hash: []byte("temp hash"), CreatedAt: t0.Add(-time.Minute), ExpiresAt: in(time.Hour)}
	must(t, s.CreateKey(ctx, old))
	must(t, s.CreateKey(ctx, expiring))
	got, err := s.KeyByHash(ctx, expiring.Hash)
	must(t, err)
	diff(t, "key with an expiry", got, expiring)

	// Another app's keys are not listed, nor found, nor rotated.
	must(t, s.CreateKey(ctx, herald.APIKey{ID: newID(), AppID: b.ID, Name: "b", Scope: herald.ScopeAdmin,
		Prefix: "hrd_a_b00000", Hash: []byte("b hash"), CreatedAt: t0}))
	list, err := s.ListKeys(ctx, a.ID)
	must(t, err)
	diff(t, "keys newest first", list, []herald.APIKey{expiring, old})
	_, err = s.GetKey(ctx, b.ID, old.ID)
	wantCode(t, err, herald.CodeNotFound)
	got, err = s.GetKey(ctx, a.ID, old.ID)
	must(t, err)
	diff(t, "get key", got, old)
	next := herald.APIKey{ID: newID(), AppID: a.ID, Name: "ci", Scope: herald.ScopeSend, Prefix: "hrd_s_new000",
		Hash: []byte("new hash"), CreatedAt: t0}
	wantCode(t, s.RotateKey(ctx, b.ID, old.ID, next, t0.Add(time.Hour)), herald.CodeNotFound)
	if _, err := s.KeyByHash(ctx, next.Hash); !herald.IsNotFound(err) {
		t.Fatalf("a refused rotation stored the new key: %v", err)
	}

	// Rotation: both keys live, the old one until the grace period ends.
	must(t, s.RotateKey(ctx, a.ID, old.ID, next, t0.Add(time.Hour)))
	got, err = s.KeyByHash(ctx, old.Hash)
	must(t, err)
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("rotated key expires at %v, want %v", got.ExpiresAt, t0.Add(time.Hour))
	}
	got, err = s.KeyByHash(ctx, next.Hash)
	must(t, err)
	diff(t, "new key of a rotation", got, next)
	// A rotation never extends a key.
	next2 := next
	next2.ID, next2.Hash = newID(), []byte("newer hash")
	must(t, s.RotateKey(ctx, a.ID, expiring.ID, next2, t0.Add(48*time.Hour)))
	got, err = s.GetKey(ctx, a.ID, expiring.ID)
	must(t, err)
	if !got.ExpiresAt.Equal(*expiring.ExpiresAt) {
		t.Errorf("rotation moved the expiry from %v to %v", expiring.ExpiresAt, got.ExpiresAt)
	}
	// A rotation whose new key collides stores nothing.
	clash := next
	clash.ID = newID()
	wantCode(t, s.RotateKey(ctx, a.ID, old.ID, clash, t0), herald.CodeConflict)
	got, err = s.GetKey(ctx, a.ID, old.ID)
	must(t, err)
	if !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("a failed rotation changed the expiry to %v", got.ExpiresAt)
	}
	must(t, s.RevokeKey(ctx, a.ID, next2.ID, t0))
	wantCode(t, s.RotateKey(ctx, a.ID, next2.ID, clash, t0), herald.CodeNotFound)
	_, err = s.GetKey(ctx, a.ID, next2.ID)
	wantCode(t, err, herald.CodeNotFound)

	// Rehash moves a key to another hash, only from the hash it has.
	wantCode(t, s.RehashKey(ctx, old.ID, []byte("not its hash"), []byte("keyed")), herald.CodeNotFound)
	must(t, s.RehashKey(ctx, old.ID, old.Hash, []byte("keyed")))
	if _, err := s.KeyByHash(ctx, old.Hash); !herald.IsNotFound(err) {
		t.Errorf("the key is still found by its old hash: %v", err)
	}
	got, err = s.KeyByHash(ctx, []byte("keyed"))
	must(t, err)
	if got.ID != old.ID {
		t.Errorf("new hash finds key %s, want %s", got.ID, old.ID)
	}

	// The last use only moves forward.
	must(t, s.MarkKeyUsed(ctx, old.ID, t0.Add(time.Minute)))
	must(t, s.MarkKeyUsed(ctx, old.ID, t0))
	got, err = s.GetKey(ctx, a.ID, old.ID)
	must(t, err)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("last used at %v, want %v", got.LastUsedAt, t0.Add(time.Minute))
	}
	wantCode(t, s.MarkKeyUsed(ctx, newID(), t0), herald.CodeNotFound)
	list, err = s.ListKeys(ctx, createApp(t, s).ID)
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Errorf("keys of an app without keys = %#v, want an empty list", list)
	}
}

func testUsers(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now()
	u := herald.User{AppID: a.ID, ID: "user-1", Email: "ada@example.com", Phone: "+14155550100", Locale: "en-GB",
		Timezone: "Europe/London", Attributes: map[string]any{"plan": "pro", "seats": json.Number("3"), "beta": true,
			"crm_id": json.Number("123456789012345678901234567890")}, // numbers come back exactly, as json.Number
		CreatedAt: t0, UpdatedAt: t0}
	got, created, err := s.PutUser(ctx, u)
	must(t, err)
	if !created {
		t.Error("created = false for a new user")
	}
	diff(t, "put user", got, u)
	stored, err := s.GetUser(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "get user", stored, u)

	// Contact statuses and CreatedAt survive a replace.
	must(t, s.SetContactStatus(ctx, a.ID, u.ID, herald.ChannelEmail, herald.DeviceInvalid))
	must(t, s.SetContactStatus(ctx, a.ID, u.ID, herald.ChannelSMS, herald.DeviceInvalid))
	must(t, s.SetContactStatus(ctx, a.ID, u.ID, herald.ChannelSMS, ""))
	wantCode(t, s.SetContactStatus(ctx, a.ID, u.ID, herald.ChannelPush, herald.DeviceInvalid), herald.CodeInvalid)
	wantCode(t, s.SetContactStatus(ctx, b.ID, u.ID, herald.ChannelEmail, ""), herald.CodeNotFound)
	t1 := t0.Add(time.Minute)
	u2 := herald.User{AppID: a.ID, ID: u.ID, Email: "ada@lovelace.example", CreatedAt: t1, UpdatedAt: t1}
	got, created, err = s.PutUser(ctx, u2)
	must(t, err)
	if created {
		t.Error("created = true for an existing user")
	}
	want := u2
	want.CreatedAt, want.EmailStatus = t0, herald.DeviceInvalid
	diff(t, "replaced user", got, want)
	stored, err = s.GetUser(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "get replaced user", stored, want)

	// Another app sees nothing, and its user of the same id is its own.
	_, err = s.GetUser(ctx, b.ID, u.ID)
	wantCode(t, err, herald.CodeNotFound)
	wantCode(t, s.DeleteUser(ctx, b.ID, u.ID), herald.CodeNotFound)
	other := putUser(t, s, b.ID, u.ID)
	if other.Email == want.Email {
		t.Error("the other app's user shares the first app's profile")
	}

	// Delete takes devices and preferences with it.
	_, err = s.AddDevice(ctx, herald.Device{AppID: a.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformIOS,
		Token: "tok", Status: herald.DeviceActive, CreatedAt: now()})
	must(t, err)
	must(t, s.PutPreferences(ctx, a.ID, u.ID, herald.Preferences{Channels: map[herald.Channel]bool{herald.ChannelSMS: false}}))
	must(t, s.DeleteUser(ctx, a.ID, u.ID))
	_, err = s.GetUser(ctx, a.ID, u.ID)
	wantCode(t, err, herald.CodeNotFound)
	wantCode(t, s.DeleteUser(ctx, a.ID, u.ID), herald.CodeNotFound)
	putUser(t, s, a.ID, u.ID)
	devs, err := s.ListDevices(ctx, a.ID, u.ID)
	must(t, err)
	if len(devs) != 0 {
		t.Errorf("devices survived their user's deletion: %v", devs)
	}
	p, err := s.GetPreferences(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "preferences after delete", p, herald.Preferences{})
	if _, err := s.GetUser(ctx, b.ID, u.ID); err != nil {
		t.Errorf("deleting app A's user touched app B's: %v", err)
	}
}

func testDevices(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	u := putUser(t, s, a.ID, "user-1")
	_, err := s.AddDevice(ctx, herald.Device{AppID: a.ID, ID: newID(), UserID: "nobody", Platform: herald.PlatformIOS,
		Token: "t", Status: herald.DeviceActive, CreatedAt: now()})
	wantCode(t, err, herald.CodeNotFound)
	// The user exists, but in another app.
	_, err = s.AddDevice(ctx, herald.Device{AppID: b.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformIOS,
		Token: "t", Status: herald.DeviceActive, CreatedAt: now()})
	wantCode(t, err, herald.CodeNotFound)

	t0 := now()
	ios := herald.Device{AppID: a.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformIOS, Token: "apns-token",
		Status: herald.DeviceActive, CreatedAt: t0}
	sub := &herald.WebPushSubscription{Endpoint: "https://push.example/abc"}
	sub.Keys.P256dh, sub.Keys.Auth = "p256", "auth"
	web := herald.Device{AppID: a.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformWeb, Token: sub.Endpoint,
		Subscription: sub, Status: herald.DeviceActive, CreatedAt: t0.Add(time.Second)}
	for _, d := range []herald.Device{ios, web} {
		got, err := s.AddDevice(ctx, d)
		must(t, err)
		diff(t, "added device", got, d)
	}

	// The same token again is the same device, reactivated.
	must(t, s.SetDeviceStatus(ctx, a.ID, ios.ID, herald.DeviceInvalid))
	again, err := s.AddDevice(ctx, herald.Device{AppID: a.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformIOS,
		Token: ios.Token, Status: herald.DeviceActive, CreatedAt: now()})
	must(t, err)
	diff(t, "re-added device", again, ios)

	must(t, s.SetDeviceStatus(ctx, a.ID, web.ID, herald.DeviceInvalid))
	list, err := s.ListDevices(ctx, a.ID, u.ID)
	must(t, err)
	wantWeb := web
	wantWeb.Status = herald.DeviceInvalid
	diff(t, "devices", list, []herald.Device{ios, wantWeb})

	// Another app sees and touches nothing.
	list, err = s.ListDevices(ctx, b.ID, u.ID)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("another app lists %d devices", len(list))
	}
	wantCode(t, s.DeleteDevice(ctx, b.ID, u.ID, ios.ID), herald.CodeNotFound)
	wantCode(t, s.SetDeviceStatus(ctx, b.ID, ios.ID, herald.DeviceInvalid), herald.CodeNotFound)
	wantCode(t, s.SetDeviceStatus(ctx, a.ID, newID(), herald.DeviceInvalid), herald.CodeNotFound)

	// The phone changes hands: the token registered by another user of the
	// app is invalid for the first one; other apps' devices are untouched.
	other := putUser(t, s, a.ID, "user-2")
	putUser(t, s, b.ID, "user-1")
	inB, err := s.AddDevice(ctx, herald.Device{AppID: b.ID, ID: newID(), UserID: u.ID, Platform: herald.PlatformIOS,
		Token: ios.Token, Status: herald.DeviceActive, CreatedAt: now()})
	must(t, err)
	moved, err := s.AddDevice(ctx, herald.Device{AppID: a.ID, ID: newID(), UserID: other.ID, Platform: herald.PlatformIOS,
		Token: ios.Token, Status: herald.DeviceActive, CreatedAt: now()})
	must(t, err)
	if moved.ID == ios.ID || moved.Status != herald.DeviceActive {
		t.Errorf("device of the new owner = %+v", moved)
	}
	list, err = s.ListDevices(ctx, a.ID, u.ID)
	must(t, err)
	wantIOS := ios
	wantIOS.Status = herald.DeviceInvalid
	diff(t, "devices after the token moved", list, []herald.Device{wantIOS, wantWeb})
	list, err = s.ListDevices(ctx, b.ID, u.ID)
	must(t, err)
	diff(t, "the other app's device", list, []herald.Device{inB})

	must(t, s.DeleteDevice(ctx, a.ID, u.ID, ios.ID))
	wantCode(t, s.DeleteDevice(ctx, a.ID, u.ID, ios.ID), herald.CodeNotFound)
	list, err = s.ListDevices(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "devices after delete", list, []herald.Device{wantWeb})
}

func testPreferences(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	u := putUser(t, s, a.ID, "user-1")
	_, err := s.GetPreferences(ctx, a.ID, "nobody")
	wantCode(t, err, herald.CodeNotFound)
	wantCode(t, s.PutPreferences(ctx, a.ID, "nobody", herald.Preferences{}), herald.CodeNotFound)
	wantCode(t, s.PutPreferences(ctx, b.ID, u.ID, herald.Preferences{}), herald.CodeNotFound)

	p, err := s.GetPreferences(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "default preferences", p, herald.Preferences{})

	want := herald.Preferences{
		Channels:   map[herald.Channel]bool{herald.ChannelSMS: false, herald.ChannelEmail: true},
		Categories: map[string]map[herald.Channel]bool{"marketing": {herald.ChannelPush: false}},
		QuietHours: &herald.QuietHours{Start: "22:00", End: "07:00"},
	}
	must(t, s.PutPreferences(ctx, a.ID, u.ID, want))
	p, err = s.GetPreferences(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "preferences", p, want)

	replaced := herald.Preferences{Channels: map[herald.Channel]bool{herald.ChannelPush: false}}
	must(t, s.PutPreferences(ctx, a.ID, u.ID, replaced))
	p, err = s.GetPreferences(ctx, a.ID, u.ID)
	must(t, err)
	diff(t, "replaced preferences", p, replaced)

	_, err = s.GetPreferences(ctx, b.ID, u.ID)
	wantCode(t, err, herald.CodeNotFound)
}

func testProviderConfigs(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	_, err := s.GetProviderConfig(ctx, a.ID, herald.ChannelEmail)
	wantCode(t, err, herald.CodeNotFound)
	must(t, s.PutProviderConfig(ctx, a.ID, herald.ChannelEmail, []byte{0, 1, 2, 0xff}))
	got, err := s.GetProviderConfig(ctx, a.ID, herald.ChannelEmail)
	must(t, err)
	diff(t, "sealed", got, []byte{0, 1, 2, 0xff})
	must(t, s.PutProviderConfig(ctx, a.ID, herald.ChannelEmail, []byte("v2")))
	got, err = s.GetProviderConfig(ctx, a.ID, herald.ChannelEmail)
	must(t, err)
	diff(t, "replaced sealed", got, []byte("v2"))
	_, err = s.GetProviderConfig(ctx, a.ID, herald.ChannelSMS)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetProviderConfig(ctx, b.ID, herald.ChannelEmail)
	wantCode(t, err, herald.CodeNotFound)
}

// notification builds an accepted notification with one delivery per
// channel for userID, each with its "accepted" event.
func notification(appID, userID string, at time.Time, channels ...herald.Channel) herald.NewNotification {
	n := herald.Notification{AppID: appID, ID: newID(), Category: "billing", Priority: herald.PriorityHigh,
		Content: herald.Content{Title: "Invoice", Body: "Your invoice is ready", Subject: "Invoice",
			HTML: "<p>ready</p>", URL: "https://example.com/i/1", Data: map[string]string{"invoice": "1"}},
		CreatedAt: at}
	nn := herald.NewNotification{Notification: n}
	for _, c := range channels {
		d := herald.Delivery{AppID: appID, ID: newID(), NotificationID: n.ID, UserID: userID, Channel: c,
			Priority: n.Priority, Address: userID + "@example.com", Status: herald.StatusAccepted, CreatedAt: at}
		if c == herald.ChannelPush {
			d.Address, d.DeviceID, d.Platform = "apns-token", newID(), herald.PlatformIOS
		}
		nn.Deliveries = append(nn.Deliveries, d)
		nn.Events = append(nn.Events, herald.Event{AppID: appID, NotificationID: n.ID, DeliveryID: d.ID, Channel: c,
			Status: herald.StatusAccepted, At: at})
	}
	return nn
}

// wantDelivery is d as a store returns it after inserting it.
func wantDelivery(d herald.Delivery) herald.Delivery {
	if d.NextAttemptAt.IsZero() {
		d.NextAttemptAt = d.CreatedAt
	}
	d.UpdatedAt = d.CreatedAt
	return d
}

func testApplyRoundTrip(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	at := now()
	nn := notification(a.ID, "user-1", at, herald.ChannelEmail, herald.ChannelPush, herald.ChannelSMS)
	nn.Deliveries[2].NextAttemptAt = at.Add(time.Hour) // a scheduled delivery keeps its due time
	nn.Deliveries[2].Status = herald.StatusScheduled
	nn.Events[2].Status = herald.StatusScheduled
	nn.Idempotency = &herald.Idempotency{AppID: a.ID, Key: "key-1", RequestHash: []byte{1, 2, 3},
		NotificationID: nn.Notification.ID, Response: json.RawMessage(`{"id":"x",  "status":"accepted"}`), CreatedAt: at}
	// A second notification in the same batch, without idempotency and with ids left to be filled.
	other := notification(a.ID, "user-2", at.Add(time.Millisecond), herald.ChannelEmail)
	other.Events[0].AppID, other.Events[0].NotificationID = "", ""
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn, other}}))

	n, err := s.GetNotification(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	diff(t, "notification", n, nn.Notification)
	ds, err := s.ListDeliveries(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	var want []herald.Delivery
	for _, d := range nn.Deliveries {
		want = append(want, wantDelivery(d))
	}
	diff(t, "deliveries", ds, want)
	d, err := s.GetDelivery(ctx, a.ID, nn.Deliveries[1].ID)
	must(t, err)
	diff(t, "delivery", d, want[1])
	evs, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	diff(t, "events", evs, nn.Events)
	k, err := s.GetIdempotency(ctx, a.ID, "key-1")
	must(t, err)
	diff(t, "idempotency", k, *nn.Idempotency)
	if string(k.Response) != string(nn.Idempotency.Response) {
		t.Errorf("response = %s, want the exact bytes %s", k.Response, nn.Idempotency.Response)
	}
	_, err = s.GetIdempotency(ctx, a.ID, "key-2")
	wantCode(t, err, herald.CodeNotFound)

	evs, err = s.ListEvents(ctx, a.ID, other.Notification.ID)
	must(t, err)
	wantEv := other.Events[0]
	wantEv.AppID, wantEv.NotificationID = a.ID, other.Notification.ID
	diff(t, "filled event", evs, []herald.Event{wantEv})

	// An empty batch is fine.
	must(t, s.Apply(ctx, &herald.Batch{}))
}

func testApplyConflict(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	first := notification(a.ID, "user-1", now(), herald.ChannelEmail)
	first.Idempotency = &herald.Idempotency{AppID: a.ID, Key: "k", RequestHash: []byte("h1"), NotificationID: first.Notification.ID,
		Response: json.RawMessage(`{}`), CreatedAt: now()}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{first}}))

	// A batch with a good notification, a transition and a reused key fails whole.
	good := notification(a.ID, "user-2", now(), herald.ChannelEmail)
	dup := notification(a.ID, "user-3", now(), herald.ChannelSMS)
	dup.Idempotency = &herald.Idempotency{AppID: a.ID, Key: "k", RequestHash: []byte("h2"), NotificationID: dup.Notification.ID, CreatedAt: now()}
	b := &herald.Batch{
		Notifications: []herald.NewNotification{good, dup},
		Transitions: []herald.Transition{{AppID: a.ID, DeliveryID: first.Deliveries[0].ID, To: herald.StatusQueued,
			Event: herald.Event{Status: herald.StatusQueued, At: now()}}},
	}
	wantCode(t, s.Apply(ctx, b), herald.CodeConflict)
	if b.Transitions[0].Applied {
		t.Error("transition of a failed batch reported applied")
	}
	for _, nn := range []herald.NewNotification{good, dup} {
		_, err := s.GetNotification(ctx, a.ID, nn.Notification.ID)
		wantCode(t, err, herald.CodeNotFound)
		ds, err := s.ListDeliveries(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		evs, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		if len(ds)+len(evs) != 0 {
			t.Errorf("failed batch left %d deliveries and %d events of %s", len(ds), len(evs), nn.Notification.ID)
		}
	}
	d, err := s.GetDelivery(ctx, a.ID, first.Deliveries[0].ID)
	must(t, err)
	if d.Status != herald.StatusAccepted {
		t.Errorf("failed batch moved delivery to %s", d.Status)
	}
	k, err := s.GetIdempotency(ctx, a.ID, "k")
	must(t, err)
	diff(t, "first idempotency record", k.RequestHash, []byte("h1"))

	// The same notification id again, and the same delivery id again.
	wantCode(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{first}}), herald.CodeConflict)
	again := notification(a.ID, "user-1", now(), herald.ChannelEmail)
	again.Deliveries[0].ID = first.Deliveries[0].ID
	wantCode(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{again}}), herald.CodeConflict)
	_, err = s.GetNotification(ctx, a.ID, again.Notification.ID)
	wantCode(t, err, herald.CodeNotFound)

	// The same key in another app is another key.
	b2 := createApp(t, s)
	same := notification(b2.ID, "user-1", now(), herald.ChannelEmail)
	same.Idempotency = &herald.Idempotency{AppID: b2.ID, Key: "k", RequestHash: []byte("h1"), NotificationID: same.Notification.ID, CreatedAt: now()}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{same}}))
}

func intp(n int) *int { return &n }

func testTransitions(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	t0 := now()
	nn := notification(a.ID, "user-1", t0, herald.ChannelEmail)
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	id, nid := nn.Deliveries[0].ID, nn.Notification.ID
	ev := func(st herald.Status, at time.Time) herald.Event {
		return herald.Event{NotificationID: nid, Channel: herald.ChannelEmail, Status: st, At: at}
	}
	apply := func(ts ...herald.Transition) []bool {
		t.Helper()
		b := &herald.Batch{Transitions: ts}
		must(t, s.Apply(ctx, b))
		var got []bool
		for _, tr := range b.Transitions {
			got = append(got, tr.Applied)
		}
		return got
	}

	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
	got := apply(
		herald.Transition{AppID: a.ID, DeliveryID: id, From: []herald.Status{herald.StatusQueued}, To: herald.StatusSending,
			Event: ev(herald.StatusSending, t1)},
		herald.Transition{AppID: a.ID, DeliveryID: id, From: []herald.Status{herald.StatusAccepted, herald.StatusScheduled},
			To: herald.StatusQueued, Event: ev(herald.StatusQueued, t1)},
		herald.Transition{AppID: a.ID, DeliveryID: id, IfAttempts: intp(1), To: herald.StatusSending,
			Event: ev(herald.StatusSending, t1)},
		herald.Transition{AppID: other.ID, DeliveryID: id, To: herald.StatusCanceled, Event: ev(herald.StatusCanceled, t1)},
	)
	diff(t, "applied flags of batch 1", got, []bool{false, true, false, false})

	retryAt := t0.Add(time.Hour)
	got = apply(
		herald.Transition{AppID: a.ID, DeliveryID: id, IfAttempts: intp(0), To: herald.StatusSending, Attempts: 1,
			Provider: "smtp", Event: herald.Event{Status: herald.StatusSending, Attempt: 1, Provider: "smtp", At: t2}},
		// Attempts 0 and an empty provider keep what is stored; the due time is the retry's.
		herald.Transition{AppID: a.ID, DeliveryID: id, From: []herald.Status{herald.StatusSending}, To: herald.StatusQueued,
			Reason: "timeout", DueAt: retryAt, Event: herald.Event{Status: herald.StatusQueued, Reason: "timeout", Detail: "i/o timeout", At: t2}},
	)
	diff(t, "applied flags of batch 2", got, []bool{true, true})
	d, err := s.GetDelivery(ctx, a.ID, id)
	must(t, err)
	want := wantDelivery(nn.Deliveries[0])
	want.Status, want.Reason, want.Attempts, want.Provider = herald.StatusQueued, "timeout", 1, "smtp"
	want.NextAttemptAt, want.UpdatedAt = retryAt, t2
	diff(t, "delivery after retry", d, want)

	got = apply(
		herald.Transition{AppID: a.ID, DeliveryID: id, IfAttempts: intp(1), To: herald.StatusSent, Attempts: 2,
			ProviderMessageID: "msg-1", Event: ev(herald.StatusSent, t3)},
		// sent is Done: an empty From no longer matches.
		herald.Transition{AppID: a.ID, DeliveryID: id, To: herald.StatusFailed, Event: ev(herald.StatusFailed, t3)},
		// An explicit From may still move a done delivery on.
		herald.Transition{AppID: a.ID, DeliveryID: id, From: []herald.Status{herald.StatusSent}, To: herald.StatusDelivered,
			Event: ev(herald.StatusDelivered, t3)},
		herald.Transition{AppID: a.ID, DeliveryID: newID(), To: herald.StatusSent, Event: ev(herald.StatusSent, t3)},
	)
	diff(t, "applied flags of batch 3", got, []bool{true, false, true, false})
	d, err = s.GetDelivery(ctx, a.ID, id)
	must(t, err)
	want.Status, want.Reason, want.Attempts, want.ProviderMessageID = herald.StatusDelivered, "", 2, "msg-1"
	want.NextAttemptAt, want.UpdatedAt = t3, t3
	diff(t, "delivered delivery", d, want)

	evs, err := s.ListEvents(ctx, a.ID, nid)
	must(t, err)
	var statuses []herald.Status
	for _, e := range evs {
		statuses = append(statuses, e.Status)
		if e.AppID != a.ID || e.DeliveryID != id || e.NotificationID != nid || e.Channel != herald.ChannelEmail {
			t.Errorf("event %+v lacks its app, delivery, notification or channel", e)
		}
	}
	diff(t, "timeline", statuses, []herald.Status{herald.StatusAccepted, herald.StatusQueued, herald.StatusSending,
		herald.StatusQueued, herald.StatusSent, herald.StatusDelivered})
	diff(t, "sending event", evs[2], herald.Event{AppID: a.ID, NotificationID: nid, DeliveryID: id, Channel: herald.ChannelEmail,
		Status: herald.StatusSending, Attempt: 1, Provider: "smtp", At: t2})
	evs, err = s.ListEvents(ctx, other.ID, nid)
	must(t, err)
	if len(evs) != 0 {
		t.Errorf("the other app's transition wrote %d events", len(evs))
	}
}

// testTransitionsInBulk applies, in one batch, more transitions than one
// statement of a store may carry: each delivery's claim (two transitions,
// the second guarded on the first's result), interleaved with the others'
// and with transitions whose guard fails, as the group commit merges
// many workers' requests.
func testTransitionsInBulk(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	t0 := now()
	const n = 50
	var nns []herald.NewNotification
	for range n {
		nns = append(nns, notification(a.ID, "user-1", t0, herald.ChannelEmail))
	}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: nns}))
	t1 := t0.Add(time.Second)
	b := &herald.Batch{}
	var want []bool
	for i, nn := range nns {
		d := nn.Deliveries[0]
		ev := func(st herald.Status, attempt int) herald.Event {
			return herald.Event{AppID: a.ID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
				Status: st, Attempt: attempt, At: t1}
		}
		if i%5 == 4 {
			// A stale claim: the guard on the attempt count fails, for both steps.
			b.Transitions = append(b.Transitions,
				herald.Transition{AppID: a.ID, DeliveryID: d.ID, From: []herald.Status{herald.StatusAccepted}, IfAttempts: intp(3),
					To: herald.StatusQueued, Event: ev(herald.StatusQueued, 0)},
				herald.Transition{AppID: a.ID, DeliveryID: d.ID, IfAttempts: intp(3), To: herald.StatusSending, Attempts: 4,
					Event: ev(herald.StatusSending, 4)})
			want = append(want, false, false)
			continue
		}
		b.Transitions = append(b.Transitions,
			herald.Transition{AppID: a.ID, DeliveryID: d.ID, From: []herald.Status{herald.StatusAccepted}, IfAttempts: intp(0),
				To: herald.StatusQueued, Event: ev(herald.StatusQueued, 0)},
			// Holds only after the step before: the delivery is queued by then.
			herald.Transition{AppID: a.ID, DeliveryID: d.ID, From: []herald.Status{herald.StatusQueued}, IfAttempts: intp(0),
				To: herald.StatusSending, Attempts: 1, Provider: "smtp", DueAt: t1.Add(time.Minute), Event: ev(herald.StatusSending, 1)})
		want = append(want, true, true)
		if i%3 == 0 {
			// A second claim of the same attempt in the same batch loses.
			b.Transitions = append(b.Transitions, herald.Transition{AppID: a.ID, DeliveryID: d.ID,
				From: []herald.Status{herald.StatusAccepted, herald.StatusQueued}, IfAttempts: intp(0),
				To: herald.StatusSending, Attempts: 1, Event: ev(herald.StatusSending, 1)})
			want = append(want, false)
		}
	}
	must(t, s.Apply(ctx, b))
	var got []bool
	for _, tr := range b.Transitions {
		got = append(got, tr.Applied)
	}
	diff(t, "applied flags", got, want)
	for i, nn := range nns {
		d, err := s.GetDelivery(ctx, a.ID, nn.Deliveries[0].ID)
		must(t, err)
		w := wantDelivery(nn.Deliveries[0])
		if i%5 != 4 {
			w.Status, w.Attempts, w.Provider, w.NextAttemptAt, w.UpdatedAt = herald.StatusSending, 1, "smtp", t1.Add(time.Minute), t1
		}
		diff(t, fmt.Sprintf("delivery %d", i), d, w)
		evs, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		var steps []herald.Status
		for _, e := range evs {
			steps = append(steps, e.Status)
		}
		wantSteps := []herald.Status{herald.StatusAccepted}
		if i%5 != 4 {
			wantSteps = append(wantSteps, herald.StatusQueued, herald.StatusSending)
		}
		diff(t, fmt.Sprintf("timeline %d", i), steps, wantSteps)
	}
}

// testTransitionSteps: a transition's steps are written before its event,
// each with its own time and the ids and channel it lacks filled from the
// delivery, when the transition applies, and none of them when it does
// not: a worker's claim of a fresh delivery, queued then sending.
func testTransitionSteps(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	t0 := now()
	var nns []herald.NewNotification
	for range 4 {
		nns = append(nns, notification(a.ID, "user-1", t0, herald.ChannelEmail))
	}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: nns}))
	queuedAt, sendingAt := t0.Add(time.Second), t0.Add(2*time.Second)
	claim := func(d herald.Delivery, ifAttempts int) herald.Transition {
		return herald.Transition{AppID: a.ID, DeliveryID: d.ID,
			From: []herald.Status{herald.StatusAccepted, herald.StatusScheduled}, IfAttempts: intp(ifAttempts),
			To: herald.StatusSending, Attempts: ifAttempts + 1, DueAt: sendingAt.Add(time.Minute),
			// The step leaves its notification and channel to the store.
			Steps: []herald.Event{{Status: herald.StatusQueued, At: queuedAt}},
			Event: herald.Event{AppID: a.ID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
				Status: herald.StatusSending, Attempt: ifAttempts + 1, At: sendingAt}}
	}
	b := &herald.Batch{Transitions: []herald.Transition{
		claim(nns[0].Deliveries[0], 0),
		claim(nns[1].Deliveries[0], 3), // stale: the guard on the attempt count fails
		claim(nns[2].Deliveries[0], 0),
		claim(nns[0].Deliveries[0], 0), // a second claim of the same attempt loses
		// A transition without steps in the same batch is as before.
		{AppID: a.ID, DeliveryID: nns[3].Deliveries[0].ID, To: herald.StatusCanceled,
			Event: herald.Event{Status: herald.StatusCanceled, At: sendingAt}},
	}}
	must(t, s.Apply(ctx, b))
	var got []bool
	for _, tr := range b.Transitions {
		got = append(got, tr.Applied)
	}
	diff(t, "applied flags", got, []bool{true, false, true, false, true})

	for i, nn := range nns {
		d := nn.Deliveries[0]
		accepted := herald.Event{AppID: a.ID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
			Status: herald.StatusAccepted, At: t0}
		want := []herald.Event{accepted}
		wantD := wantDelivery(d)
		switch i {
		case 0, 2:
			queued, sending := accepted, accepted
			queued.Status, queued.At = herald.StatusQueued, queuedAt
			sending.Status, sending.Attempt, sending.At = herald.StatusSending, 1, sendingAt
			want = append(want, queued, sending)
			wantD.Status, wantD.Attempts, wantD.NextAttemptAt, wantD.UpdatedAt = herald.StatusSending, 1, sendingAt.Add(time.Minute), sendingAt
		case 3:
			canceled := accepted
			canceled.Status, canceled.At = herald.StatusCanceled, sendingAt
			want = append(want, canceled)
			wantD.Status, wantD.NextAttemptAt, wantD.UpdatedAt = herald.StatusCanceled, sendingAt, sendingAt
		}
		evs, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		diff(t, fmt.Sprintf("timeline of delivery %d", i), evs, want)
		got, err := s.GetDelivery(ctx, a.ID, d.ID)
		must(t, err)
		diff(t, fmt.Sprintf("delivery %d", i), got, wantD)
	}
}

// testDeliveryWork: the worker's one read gives what GetDelivery,
// GetNotification and GetPreferences give, and tells an erased user.
func testDeliveryWork(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	putUser(t, s, a.ID, "with-prefs")
	putUser(t, s, a.ID, "no-prefs")
	putUser(t, s, a.ID, "erased")
	prefs := herald.Preferences{Channels: map[herald.Channel]bool{herald.ChannelSMS: false},
		Categories: map[string]map[herald.Channel]bool{"billing": {herald.ChannelEmail: false}}}
	must(t, s.PutPreferences(ctx, a.ID, "with-prefs", prefs))
	must(t, s.PutPreferences(ctx, a.ID, "erased", prefs))
	at := now()
	byUser := map[string]herald.NewNotification{}
	for _, u := range []string{"with-prefs", "no-prefs", "erased", ""} {
		nn := notification(a.ID, u, at, herald.ChannelEmail)
		if u == "" {
			nn.Deliveries[0].UserID = "" // an address given in the request
		}
		byUser[u] = nn
		must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	}
	must(t, s.DeleteUser(ctx, a.ID, "erased"))
	for u, nn := range byUser {
		got, err := s.GetDeliveryWork(ctx, a.ID, nn.Deliveries[0].ID)
		must(t, err)
		d, err := s.GetDelivery(ctx, a.ID, nn.Deliveries[0].ID)
		must(t, err)
		n, err := s.GetNotification(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		want := herald.DeliveryWork{Delivery: d, Notification: n}
		switch u {
		case "with-prefs":
			want.Preferences = prefs
		case "erased":
			want.UserGone = true
		}
		diff(t, fmt.Sprintf("work of the delivery to %q", u), got, want)
	}
	_, err := s.GetDeliveryWork(ctx, other.ID, byUser[""].Deliveries[0].ID)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetDeliveryWork(ctx, a.ID, newID())
	wantCode(t, err, herald.CodeNotFound)
}

func testDeliveryByProviderMessage(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now()
	na, nb := notification(a.ID, "u", t0, herald.ChannelSMS), notification(b.ID, "u", t0, herald.ChannelSMS)
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{na, nb}}))
	sent := func(appID, id, sid string) {
		t.Helper()
		b := &herald.Batch{Transitions: []herald.Transition{{AppID: appID, DeliveryID: id, To: herald.StatusSent,
			Provider: "twilio", ProviderMessageID: sid, Event: herald.Event{Status: herald.StatusSent, At: t0}}}}
		must(t, s.Apply(ctx, b))
	}
	sent(a.ID, na.Deliveries[0].ID, "SM-a")
	sent(b.ID, nb.Deliveries[0].ID, "SM-b")

	for sid, want := range map[string]herald.Delivery{"SM-a": na.Deliveries[0], "SM-b": nb.Deliveries[0]} {
		d, err := s.DeliveryByProviderMessage(ctx, "twilio", sid)
		must(t, err)
		if d.AppID != want.AppID || d.ID != want.ID || d.Status != herald.StatusSent || d.ProviderMessageID != sid {
			t.Errorf("DeliveryByProviderMessage(%q) = %s/%s %s %q, want %s/%s sent", sid, d.AppID, d.ID, d.Status,
				d.ProviderMessageID, want.AppID, want.ID)
		}
	}
	_, err := s.DeliveryByProviderMessage(ctx, "sendgrid", "SM-a")
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.DeliveryByProviderMessage(ctx, "twilio", "SM-none")
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.DeliveryByProviderMessage(ctx, "twilio", "")
	wantCode(t, err, herald.CodeNotFound)
}

func testLogIsolation(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	nn := notification(a.ID, "user-1", now(), herald.ChannelEmail)
	nn.Idempotency = &herald.Idempotency{AppID: a.ID, Key: "k", NotificationID: nn.Notification.ID, CreatedAt: now()}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))

	_, err := s.GetNotification(ctx, b.ID, nn.Notification.ID)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetDelivery(ctx, b.ID, nn.Deliveries[0].ID)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetIdempotency(ctx, b.ID, "k")
	wantCode(t, err, herald.CodeNotFound)
	ds, err := s.ListDeliveries(ctx, b.ID, nn.Notification.ID)
	must(t, err)
	evs, err := s.ListEvents(ctx, b.ID, nn.Notification.ID)
	must(t, err)
	list, next, err := s.ListNotifications(ctx, b.ID, herald.NotificationFilter{})
	must(t, err)
	if len(ds)+len(evs)+len(list) != 0 || next != "" {
		t.Errorf("another app sees %d deliveries, %d events, %d notifications", len(ds), len(evs), len(list))
	}
	_, err = s.GetNotification(ctx, a.ID, newID())
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetDelivery(ctx, a.ID, newID())
	wantCode(t, err, herald.CodeNotFound)
}

func ids(ns []herald.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func testListNotifications(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	base := now().Add(-time.Hour)
	var all []herald.NewNotification // oldest first
	for i := range 7 {
		c := herald.ChannelEmail
		if i%2 == 1 {
			c = herald.ChannelSMS
		}
		all = append(all, notification(a.ID, fmt.Sprintf("user-%d", i%3), base.Add(time.Duration(i)*time.Second), c))
	}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: all}))
	must(t, s.Apply(ctx, &herald.Batch{Transitions: []herald.Transition{{AppID: a.ID, DeliveryID: all[3].Deliveries[0].ID,
		To: herald.StatusSent, Event: herald.Event{Status: herald.StatusSent, At: now()}}}}))
	// newest first, picking by index into all
	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].Notification.ID)
		}
		return out
	}

	var pages [][]string
	f := herald.NotificationFilter{Limit: 3}
	for range 5 {
		list, next, err := s.ListNotifications(ctx, a.ID, f)
		must(t, err)
		pages = append(pages, ids(list))
		if next == "" {
			break
		}
		f.Cursor = next
	}
	diff(t, "pages", pages, [][]string{pick(6, 5, 4), pick(3, 2, 1), pick(0)})
	list, next, err := s.ListNotifications(ctx, a.ID, herald.NotificationFilter{})
	must(t, err)
	diff(t, "default page", ids(list), pick(6, 5, 4, 3, 2, 1, 0))
	if next != "" {
		t.Errorf("next = %q on the only page", next)
	}
	diff(t, "listed notification", list[6], all[0].Notification)
	list, next, err = s.ListNotifications(ctx, a.ID, herald.NotificationFilter{Limit: 7})
	must(t, err)
	if len(list) != 7 || next != "" {
		t.Errorf("an exactly full page: %d items, next %q; want 7 and none", len(list), next)
	}

	for _, tc := range []struct {
		name string
		f    herald.NotificationFilter
		want []string
	}{
		{"user", herald.NotificationFilter{UserID: "user-1"}, pick(4, 1)},
		{"status", herald.NotificationFilter{Status: herald.StatusSent}, pick(3)},
		{"channel", herald.NotificationFilter{Channel: herald.ChannelSMS}, pick(5, 3, 1)},
		{"since", herald.NotificationFilter{Since: base.Add(4 * time.Second)}, pick(6, 5, 4)},
		{"user and channel", herald.NotificationFilter{UserID: "user-0", Channel: herald.ChannelSMS}, pick(3)},
		{"status accepted", herald.NotificationFilter{Status: herald.StatusAccepted}, pick(6, 5, 4, 2, 1, 0)},
		{"nothing", herald.NotificationFilter{UserID: "nobody"}, nil},
	} {
		list, next, err := s.ListNotifications(ctx, a.ID, tc.f)
		must(t, err)
		var got []string
		if len(list) > 0 {
			got = ids(list)
		}
		diff(t, "filter "+tc.name, got, tc.want)
		if next != "" {
			t.Errorf("filter %s: next = %q on the only page", tc.name, next)
		}
	}
	list, next, err = s.ListNotifications(ctx, a.ID, herald.NotificationFilter{Channel: herald.ChannelEmail, Limit: 2})
	must(t, err)
	diff(t, "filtered page 1", ids(list), pick(6, 4))
	list, _, err = s.ListNotifications(ctx, a.ID, herald.NotificationFilter{Channel: herald.ChannelEmail, Limit: 2, Cursor: next})
	must(t, err)
	diff(t, "filtered page 2", ids(list), pick(2, 0))

	_, _, err = s.ListNotifications(ctx, a.ID, herald.NotificationFilter{Cursor: "not a cursor!"})
	wantCode(t, err, herald.CodeInvalid)
}

func testListDeadLetters(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now().Add(-time.Hour)
	channels := []herald.Channel{herald.ChannelEmail, herald.ChannelSMS, herald.ChannelEmail, herald.ChannelPush, herald.ChannelEmail}
	var all []herald.NewNotification // oldest first
	for i, c := range channels {
		all = append(all, notification(a.ID, "user-1", t0.Add(time.Duration(i)*time.Second), c))
	}
	// A second delivery of the first notification stays alive: its events must not show up.
	alive := notification(a.ID, "user-1", t0, herald.ChannelSMS).Deliveries[0]
	alive.NotificationID = all[0].Notification.ID
	all[0].Deliveries = append(all[0].Deliveries, alive)
	all[0].Events = append(all[0].Events, herald.Event{AppID: a.ID, NotificationID: alive.NotificationID, DeliveryID: alive.ID,
		Channel: alive.Channel, Status: herald.StatusAccepted, At: t0})
	other := notification(b.ID, "user-1", t0, herald.ChannelEmail)
	must(t, s.Apply(ctx, &herald.Batch{Notifications: append(all, other)}))

	die := func(appID string, d herald.Delivery, at time.Time) {
		t.Helper()
		must(t, s.Apply(ctx, &herald.Batch{Transitions: []herald.Transition{
			{AppID: appID, DeliveryID: d.ID, To: herald.StatusSending, Attempts: 1,
				Event: herald.Event{Status: herald.StatusSending, Attempt: 1, At: at}},
			{AppID: appID, DeliveryID: d.ID, To: herald.StatusDead, Reason: herald.ReasonRetriesExhausted, Provider: "smtp",
				Event: herald.Event{Status: herald.StatusDead, Reason: herald.ReasonRetriesExhausted, Attempt: 1, Provider: "smtp",
					Detail: "451 try again later", At: at.Add(time.Second)}},
		}}))
	}
	dead := []int{0, 1, 2, 4} // all[3] stays accepted
	for _, i := range dead {
		die(a.ID, all[i].Deliveries[0], t0.Add(time.Minute))
	}
	die(b.ID, other.Deliveries[0], t0.Add(time.Minute))

	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].Deliveries[0].ID)
		}
		return out
	}
	deliveryIDs := func(list []herald.DeadLetter) []string {
		var out []string
		for _, dl := range list {
			out = append(out, dl.Delivery.ID)
		}
		return out
	}
	var pages [][]string
	f := herald.DeadLetterFilter{Limit: 3}
	for range 4 {
		list, next, err := s.ListDeadLetters(ctx, a.ID, f)
		must(t, err)
		pages = append(pages, deliveryIDs(list))
		if next == "" {
			break
		}
		f.Cursor = next
	}
	diff(t, "pages", pages, [][]string{pick(4, 2, 1), pick(0)})

	list, next, err := s.ListDeadLetters(ctx, a.ID, herald.DeadLetterFilter{Channel: herald.ChannelEmail})
	must(t, err)
	diff(t, "email dead letters", deliveryIDs(list), pick(4, 2, 0))
	if next != "" {
		t.Errorf("next = %q on the only page", next)
	}
	first := list[2]
	if first.Delivery.Status != herald.StatusDead || first.Delivery.Reason != herald.ReasonRetriesExhausted ||
		first.Delivery.Attempts != 1 || first.Delivery.Provider != "smtp" {
		t.Errorf("dead delivery = %+v", first.Delivery)
	}
	var statuses []herald.Status
	for _, e := range first.Events {
		statuses = append(statuses, e.Status)
		if e.DeliveryID != first.Delivery.ID {
			t.Errorf("event %+v belongs to another delivery", e)
		}
	}
	diff(t, "timeline", statuses, []herald.Status{herald.StatusAccepted, herald.StatusSending, herald.StatusDead})
	diff(t, "dead event", first.Events[2], herald.Event{AppID: a.ID, NotificationID: first.Delivery.NotificationID,
		DeliveryID: first.Delivery.ID, Channel: herald.ChannelEmail, Status: herald.StatusDead,
		Reason: herald.ReasonRetriesExhausted, Attempt: 1, Provider: "smtp", Detail: "451 try again later", At: t0.Add(time.Minute + time.Second)})

	list, _, err = s.ListDeadLetters(ctx, b.ID, herald.DeadLetterFilter{})
	must(t, err)
	diff(t, "the other app's dead letters", deliveryIDs(list), []string{other.Deliveries[0].ID})
	list, next, err = s.ListDeadLetters(ctx, createApp(t, s).ID, herald.DeadLetterFilter{})
	must(t, err)
	if len(list) != 0 || next != "" {
		t.Errorf("an app without dead letters sees %d", len(list))
	}
	_, _, err = s.ListDeadLetters(ctx, a.ID, herald.DeadLetterFilter{Cursor: "not a cursor!"})
	wantCode(t, err, herald.CodeInvalid)
}

func testStaleAndPostpone(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now()
	mk := func(appID string, st herald.Status, due time.Duration) herald.NewNotification {
		nn := notification(appID, "user-1", t0.Add(-time.Hour), herald.ChannelEmail)
		nn.Deliveries[0].Status, nn.Deliveries[0].NextAttemptAt = st, t0.Add(due)
		return nn
	}
	accepted := mk(a.ID, herald.StatusAccepted, -10*time.Second)
	queued := mk(b.ID, herald.StatusQueued, -5*time.Second)
	sending := mk(a.ID, herald.StatusSending, -time.Second)
	scheduled := mk(a.ID, herald.StatusScheduled, -20*time.Second)
	batch := []herald.NewNotification{
		sending, queued, accepted, scheduled,
		mk(b.ID, herald.StatusScheduled, time.Hour), // not yet due
		mk(a.ID, herald.StatusSent, -30*time.Second),
		mk(a.ID, herald.StatusDead, -30*time.Second),
		mk(b.ID, herald.StatusAccepted, time.Hour),
		mk(b.ID, herald.StatusQueued, 0), // due exactly at t0: not before it
	}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: batch}))
	stale := func(staleBefore, retryBefore time.Time, limit int) []string {
		t.Helper()
		ds, err := s.StaleDeliveries(ctx, staleBefore, retryBefore, limit)
		must(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	diff(t, "stale", stale(t0, t0, 10), []string{scheduled.Deliveries[0].ID, accepted.Deliveries[0].ID, queued.Deliveries[0].ID, sending.Deliveries[0].ID})
	diff(t, "stale, limit 2", stale(t0, t0, 2), []string{scheduled.Deliveries[0].ID, accepted.Deliveries[0].ID})
	// Retries and scheduled sends are due at their own time; lost work only after the staleness horizon.
	diff(t, "retries due, nothing stale yet", stale(t0.Add(-time.Minute), t0, 10), []string{scheduled.Deliveries[0].ID, queued.Deliveries[0].ID})
	diff(t, "stale only", stale(t0, t0.Add(-time.Minute), 10), []string{accepted.Deliveries[0].ID, sending.Deliveries[0].ID})

	until := t0.Add(time.Minute)
	must(t, s.PostponeDeliveries(ctx, []string{accepted.Deliveries[0].ID, queued.Deliveries[0].ID, scheduled.Deliveries[0].ID}, t0, until))
	must(t, s.PostponeDeliveries(ctx, nil, t0, until))
	diff(t, "stale after postpone", stale(t0, t0, 10), []string{sending.Deliveries[0].ID})
	// A delivery whose due time moved past the cut-off since it was read keeps it.
	must(t, s.PostponeDeliveries(ctx, []string{sending.Deliveries[0].ID}, t0.Add(-time.Hour), until))
	diff(t, "guarded postpone", stale(t0, t0, 10), []string{sending.Deliveries[0].ID})
	d, err := s.GetDelivery(ctx, b.ID, queued.Deliveries[0].ID)
	must(t, err)
	want := wantDelivery(queued.Deliveries[0])
	want.NextAttemptAt = until
	diff(t, "postponed delivery", d, want)
	evs, err := s.ListEvents(ctx, b.ID, queued.Notification.ID)
	must(t, err)
	if len(evs) != 1 {
		t.Errorf("postpone wrote events: %v", evs)
	}
}

// testConcurrentApply checks that concurrent writers (the group committer
// and the CLI, say) all get their batches in.
func testConcurrentApply(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	const writers, batches = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for range writers {
		wg.Go(func() {
			for range batches {
				nn := notification(a.ID, "user-1", now(), herald.ChannelEmail, herald.ChannelSMS)
				errs <- s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	list, _, err := s.ListNotifications(ctx, a.ID, herald.NotificationFilter{Limit: 500})
	must(t, err)
	if len(list) != writers*batches {
		t.Errorf("%d notifications stored, want %d", len(list), writers*batches)
	}
}

func testLeases(t *testing.T, s herald.Store) {
	ctx := t.Context()
	t0 := now()
	ttl := 10 * time.Second
	acquire := func(name, holder string, at time.Duration, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, name, holder, t0.Add(at), ttl)
		must(t, err)
		if got != want {
			t.Fatalf("AcquireLease(%s, %s, t0+%s) = %v, want %v", name, holder, at, got, want)
		}
	}
	acquire("reconciler", "a", 0, true)
	acquire("reconciler", "b", time.Second, false)
	acquire("scheduler", "b", time.Second, true)    // another lease is independent
	acquire("reconciler", "a", 5*time.Second, true) // renew: now held until t0+15s
	acquire("reconciler", "b", 12*time.Second, false)
	acquire("reconciler", "b", 15*time.Second, true) // expired: fail over
	acquire("reconciler", "a", 16*time.Second, false)
	must(t, s.ReleaseLease(ctx, "reconciler", "a")) // not a's to release
	acquire("reconciler", "a", 17*time.Second, false)
	must(t, s.ReleaseLease(ctx, "reconciler", "b"))
	acquire("reconciler", "a", 17*time.Second, true)
	must(t, s.ReleaseLease(ctx, "nothing", "a"))
}

func testPingClose(t *testing.T, s herald.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	must(t, s.Ping(ctx))
	must(t, s.Close())
	must(t, s.Close())
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// testIdempotencySweep: records older than the cut-off go, in batches of at
// most the limit and oldest first, across apps; newer ones and the
// notifications themselves stay.
func testIdempotencySweep(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	t0 := now().Add(-48 * time.Hour)
	var batch herald.Batch
	keys := map[string]string{} // key -> app id
	for i := range 5 {
		app := a
		if i%2 == 1 {
			app = b
		}
		at := t0.Add(time.Duration(i) * time.Hour) // keys 0..4: 48h..44h ago
		nn := notification(app.ID, "user-1", at, herald.ChannelEmail)
		key := fmt.Sprintf("old-%d", i)
		nn.Idempotency = &herald.Idempotency{AppID: app.ID, Key: key, RequestHash: []byte{byte(i)},
			NotificationID: nn.Notification.ID, CreatedAt: at}
		keys[key] = app.ID
		batch.Notifications = append(batch.Notifications, nn)
	}
	fresh := notification(a.ID, "user-1", now(), herald.ChannelEmail)
	fresh.Idempotency = &herald.Idempotency{AppID: a.ID, Key: "fresh", RequestHash: []byte{9},
		NotificationID: fresh.Notification.ID, CreatedAt: now()}
	batch.Notifications = append(batch.Notifications, fresh)
	must(t, s.Apply(ctx, &batch))

	cut := now().Add(-24 * time.Hour)
	n, err := s.DeleteIdempotencyBefore(ctx, cut, 3)
	must(t, err)
	if n != 3 {
		t.Fatalf("first sweep deleted %d, want 3 (the limit)", n)
	}
	// Oldest first: old-0..old-2 are gone, old-3 and old-4 remain.
	for i := range 5 {
		key := fmt.Sprintf("old-%d", i)
		_, err := s.GetIdempotency(ctx, keys[key], key)
		if i < 3 {
			wantCode(t, err, herald.CodeNotFound)
		} else {
			must(t, err)
		}
	}
	n, err = s.DeleteIdempotencyBefore(ctx, cut, 3)
	must(t, err)
	if n != 2 {
		t.Fatalf("second sweep deleted %d, want 2", n)
	}
	n, err = s.DeleteIdempotencyBefore(ctx, cut, 3)
	must(t, err)
	if n != 0 {
		t.Fatalf("third sweep deleted %d, want 0", n)
	}
	if _, err := s.GetIdempotency(ctx, a.ID, "fresh"); err != nil {
		t.Fatalf("a record newer than the cut-off was deleted: %v", err)
	}
	for _, nn := range batch.Notifications {
		if _, err := s.GetNotification(ctx, nn.Notification.AppID, nn.Notification.ID); err != nil {
			t.Fatalf("the sweep touched notification %s: %v", nn.Notification.ID, err)
		}
	}
}

func createWebhook(t *testing.T, s herald.Store, appID string, events ...string) herald.Webhook {
	t.Helper()
	w := herald.Webhook{AppID: appID, ID: newID(), URL: "https://hooks.example.com/" + appID,
		Events: events, Secret: []byte{0, 1, 0xfe}, CreatedAt: now()}
	must(t, s.CreateWebhook(t.Context(), w))
	return w
}

func testWebhooks(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	got, err := s.ListWebhooks(ctx, a.ID)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("a new app lists %d webhooks", len(got))
	}
	w1 := createWebhook(t, s, a.ID, "delivery.dead", "device.invalid")
	w2 := createWebhook(t, s, a.ID, "delivery.failed")
	wantCode(t, s.CreateWebhook(ctx, w1), herald.CodeConflict)
	got, err = s.ListWebhooks(ctx, a.ID)
	must(t, err)
	diff(t, "webhooks", got, []herald.Webhook{w1, w2})
	// Another app sees none of them and can neither delete nor disable them.
	got, err = s.ListWebhooks(ctx, b.ID)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("another app lists %d webhooks", len(got))
	}
	wantCode(t, s.DeleteWebhook(ctx, b.ID, w1.ID), herald.CodeNotFound)
	wantCode(t, s.DisableWebhook(ctx, b.ID, w1.ID, now()), herald.CodeNotFound)

	at := now()
	must(t, s.DisableWebhook(ctx, a.ID, w1.ID, at))
	got, err = s.ListWebhooks(ctx, a.ID)
	must(t, err)
	w1.DisabledAt = &at
	diff(t, "webhooks after disable", got, []herald.Webhook{w1, w2})

	must(t, s.DeleteWebhook(ctx, a.ID, w2.ID))
	wantCode(t, s.DeleteWebhook(ctx, a.ID, w2.ID), herald.CodeNotFound)
	got, err = s.ListWebhooks(ctx, a.ID)
	must(t, err)
	diff(t, "webhooks after delete", got, []herald.Webhook{w1})
}

func testWebhookPosts(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	wa, wb := createWebhook(t, s, a.ID, "delivery.dead"), createWebhook(t, s, b.ID, "delivery.dead")
	t0 := now()
	post := func(app, hook, id string, due time.Time) herald.WebhookPost {
		return herald.WebhookPost{AppID: app, ID: id, WebhookID: hook, Payload: []byte(`{"type":"delivery.dead"}`),
			DueAt: due, CreatedAt: t0}
	}
	p1 := post(a.ID, wa.ID, "msg_1", t0.Add(-2*time.Second))
	p2 := post(b.ID, wb.ID, "msg_2", t0.Add(-time.Second))
	p3 := post(a.ID, wa.ID, "msg_3", t0.Add(time.Hour)) // not due yet
	must(t, s.AddWebhookPosts(ctx, []herald.WebhookPost{p1, p2, p3}))
	// The same ids again (an event read twice) change nothing; a post for an
	// endpoint that does not exist is skipped.
	again := p1
	again.DueAt = t0.Add(-time.Hour)
	must(t, s.AddWebhookPosts(ctx, []herald.WebhookPost{again, post(a.ID, "no-such-hook", "msg_4", t0)}))
	must(t, s.AddWebhookPosts(ctx, nil))

	until := t0.Add(30 * time.Second)
	got, err := s.ClaimWebhookPosts(ctx, t0, until, 1)
	must(t, err)
	p1.DueAt, p2.DueAt = until, until
	diff(t, "first claim (oldest due first, limit 1)", got, []herald.WebhookPost{p1})
	got, err = s.ClaimWebhookPosts(ctx, t0, until, 10)
	must(t, err)
	diff(t, "second claim (across apps, the claimed one left out)", got, []herald.WebhookPost{p2})
	got, err = s.ClaimWebhookPosts(ctx, t0, until, 10)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("a third claim returned %+v, want nothing due", got)
	}

	// A failed attempt comes back when due, with its count.
	must(t, s.RetryWebhookPost(ctx, a.ID, p1.ID, 1, t0.Add(-time.Millisecond)))
	wantCode(t, s.RetryWebhookPost(ctx, b.ID, p1.ID, 1, t0), herald.CodeNotFound)
	got, err = s.ClaimWebhookPosts(ctx, t0, until, 10)
	must(t, err)
	p1.Attempts = 1
	diff(t, "claim after retry", got, []herald.WebhookPost{p1})

	// Another app cannot delete the post; its owner can, twice.
	must(t, s.DeleteWebhookPost(ctx, b.ID, p1.ID))
	must(t, s.RetryWebhookPost(ctx, a.ID, p1.ID, 2, t0))
	must(t, s.DeleteWebhookPost(ctx, a.ID, p1.ID))
	must(t, s.DeleteWebhookPost(ctx, a.ID, p1.ID))
	wantCode(t, s.RetryWebhookPost(ctx, a.ID, p1.ID, 3, t0), herald.CodeNotFound)

	// Disabling an endpoint drops its posts and refuses new ones; deleting
	// one drops its posts too.
	must(t, s.DisableWebhook(ctx, a.ID, wa.ID, t0))
	must(t, s.AddWebhookPosts(ctx, []herald.WebhookPost{post(a.ID, wa.ID, "msg_5", t0)}))
	must(t, s.DeleteWebhook(ctx, b.ID, wb.ID))
	got, err = s.ClaimWebhookPosts(ctx, t0.Add(2*time.Hour), until, 10)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("claim after disable and delete returned %+v, want nothing", got)
	}
}

func testTemplates(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, b := createApp(t, s), createApp(t, s)
	at := now()
	v1 := herald.Template{AppID: a.ID, Name: "welcome", CreatedAt: at,
		TemplateParts: herald.TemplateParts{Email: &herald.EmailParts{Subject: "Hi {{.name}}", HTML: "<p>{{.name}}</p>"}}}
	v2 := herald.Template{AppID: a.ID, Name: "welcome", CreatedAt: at.Add(time.Second),
		TemplateParts: herald.TemplateParts{
			SMS:  &herald.SMSParts{Text: "Hi {{.name}}"},
			Push: &herald.PushParts{Title: "Hi", Body: "{{.name}}", Data: map[string]string{"k": "{{.id}}"}}},
		Locales: map[string]herald.TemplateParts{"de": {SMS: &herald.SMSParts{Text: "Hallo {{.name}}"}}}}
	for i, tm := range []herald.Template{v1, v2} {
		v, err := s.PutTemplate(ctx, tm)
		must(t, err)
		if v != i+1 {
			t.Fatalf("save %d got version %d, want %d", i+1, v, i+1)
		}
	}
	v1.Version, v2.Version = 1, 2

	got, err := s.GetTemplate(ctx, a.ID, "welcome", 0)
	must(t, err)
	diff(t, "latest", got, v2)
	got, err = s.GetTemplate(ctx, a.ID, "welcome", 1)
	must(t, err)
	diff(t, "pinned", got, v1)
	latest, err := s.LatestTemplateVersion(ctx, a.ID, "welcome")
	must(t, err)
	if latest != 2 {
		t.Errorf("latest version = %d, want 2", latest)
	}
	_, err = s.GetTemplate(ctx, a.ID, "welcome", 3)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.GetTemplate(ctx, b.ID, "welcome", 0)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.LatestTemplateVersion(ctx, b.ID, "welcome")
	wantCode(t, err, herald.CodeNotFound)
	wantCode(t, s.DeleteTemplate(ctx, b.ID, "welcome"), herald.CodeNotFound)

	// Another app's template of the same name is its own, numbered from 1.
	v, err := s.PutTemplate(ctx, herald.Template{AppID: b.ID, Name: "welcome", CreatedAt: at,
		TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "b"}}})
	must(t, err)
	if v != 1 {
		t.Errorf("other app's first version = %d, want 1", v)
	}

	// Pages by name, with bytewise order ("Z" before "a").
	for _, name := range []string{"b-1", "Z", "a-1"} {
		_, err := s.PutTemplate(ctx, herald.Template{AppID: a.ID, Name: name, CreatedAt: at,
			TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: name}}})
		must(t, err)
	}
	var names []string
	cursor := ""
	for range 10 {
		page, next, err := s.ListTemplates(ctx, a.ID, cursor, 3)
		must(t, err)
		for _, tm := range page {
			names = append(names, tm.Name)
			if tm.Name == "welcome" {
				diff(t, "listed", tm, v2)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	diff(t, "names", names, []string{"Z", "a-1", "b-1", "welcome"})
	_, _, err = s.ListTemplates(ctx, a.ID, "bm90LWEtY3Vyc29y", 10)
	wantCode(t, err, herald.CodeInvalid)

	// A delete hides every version; the next save continues the numbering,
	// so (app, name, version) always names the same parts.
	must(t, s.DeleteTemplate(ctx, a.ID, "welcome"))
	wantCode(t, s.DeleteTemplate(ctx, a.ID, "welcome"), herald.CodeNotFound)
	_, err = s.GetTemplate(ctx, a.ID, "welcome", 1)
	wantCode(t, err, herald.CodeNotFound)
	_, err = s.LatestTemplateVersion(ctx, a.ID, "welcome")
	wantCode(t, err, herald.CodeNotFound)
	page, _, err := s.ListTemplates(ctx, a.ID, "", 10)
	must(t, err)
	if len(page) != 3 {
		t.Errorf("after delete the list has %d templates, want 3", len(page))
	}
	v, err = s.PutTemplate(ctx, v1)
	must(t, err)
	if v != 3 {
		t.Errorf("save after delete got version %d, want 3", v)
	}
	got, err = s.GetTemplate(ctx, a.ID, "welcome", 2)
	must(t, err)
	diff(t, "old version after re-save", got, v2)
}

func testTemplatedNotification(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	nn := notification(a.ID, "user-1", now(), herald.ChannelEmail, herald.ChannelSMS)
	nn.Notification.Content = herald.Content{}
	nn.Notification.Template = &herald.Rendering{Name: "welcome", Version: 3, Default: "",
		Users: map[string]string{"user-1": "de"},
		Variants: map[string]herald.Rendered{
			"":   {Email: &herald.Content{Subject: "Hi", HTML: "<p>Ada</p>", Body: "Ada"}, SMS: &herald.Content{Body: "Hi Ada"}},
			"de": {Email: &herald.Content{Subject: "Hallo", HTML: "<p>Ada</p>"}, SMS: &herald.Content{Body: "Hallo Ada"}},
		}}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	n, err := s.GetNotification(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	diff(t, "notification", n, nn.Notification)
	if got := n.ContentFor(nn.Deliveries[1]).Body; got != "Hallo Ada" {
		t.Errorf("the sms delivery of user-1 says %q, want its locale's rendering", got)
	}
	list, _, err := s.ListNotifications(ctx, a.ID, herald.NotificationFilter{})
	must(t, err)
	diff(t, "listed", list, []herald.Notification{nn.Notification})
}

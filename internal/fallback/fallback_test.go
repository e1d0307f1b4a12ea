package fallback_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/fallback"
)

// TestWalkUsesTheDevicesGiven: the walk reads nothing; the user's devices
// come with the call, an invalid one is skipped as invalid_recipient, and
// the first channel that reaches the user ends the walk.
func TestWalkUsesTheDevicesGiven(t *testing.T) {
	t.Parallel()
	u := herald.User{AppID: "app", ID: "ada", Phone: "+14155550100", Email: "ada@example.com"}
	invalid := herald.Device{ID: "old", Token: "tok-old", Platform: herald.PlatformIOS, Status: herald.DeviceInvalid}
	active := herald.Device{ID: "new", Token: "tok-new", Platform: herald.PlatformAndroid, Status: herald.DeviceActive}
	all := func(herald.Channel) bool { return true }
	plan := []herald.Channel{herald.ChannelPush, herald.ChannelSMS, herald.ChannelEmail}

	got := fallback.Walk(u, []herald.Device{invalid}, all, plan, "", "")
	want := []fallback.Planned{
		{Delivery: herald.Delivery{UserID: "ada", Channel: herald.ChannelPush, Address: "tok-old", DeviceID: "old",
			Platform: herald.PlatformIOS, Status: herald.StatusSuppressed, Reason: herald.ReasonInvalidRecipient},
			Detail: fallback.Detail(herald.ChannelPush, herald.ReasonInvalidRecipient, herald.ChannelSMS)},
		{Delivery: herald.Delivery{UserID: "ada", Channel: herald.ChannelSMS, Address: "+14155550100"},
			Detail: fallback.Detail(herald.ChannelPush, herald.ReasonInvalidRecipient, herald.ChannelSMS)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("walk with an invalid device (-want +got):\n%s", d)
	}

	got = fallback.Walk(u, []herald.Device{invalid, active}, all, plan, "", "")
	if len(got) != 2 || got[1].Delivery.DeviceID != "new" || got[1].Delivery.Status != "" {
		t.Errorf("walk with an active device = %+v; want both devices on push, the active one sent", got)
	}

	// Without devices, push has no address; devices never count on other channels.
	if ds := fallback.Targets(u, nil, true, herald.ChannelPush); ds != nil {
		t.Errorf("push targets without devices = %+v; want none", ds)
	}
	ds := fallback.Targets(u, []herald.Device{active}, false, herald.ChannelEmail)
	want2 := []herald.Delivery{{UserID: "ada", Channel: herald.ChannelEmail, Address: "ada@example.com",
		Status: herald.StatusSuppressed, Reason: herald.ReasonOptedOut}}
	if d := cmp.Diff(want2, ds); d != "" {
		t.Errorf("email targets of an opted-out user (-want +got):\n%s", d)
	}
}

package herald

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones these tests name, on any host
)

func TestQuietHoursHolds(t *testing.T) {
	london, tokyo := zone(t, "Europe/London"), zone(t, "Asia/Tokyo")
	at := func(loc *time.Location, s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	night := QuietHours{Start: "22:00", End: "07:00"}
	lunch := QuietHours{Start: "12:00", End: "13:30"}
	for _, tc := range []struct {
		name   string
		q      QuietHours
		now    time.Time
		loc    *time.Location
		inside bool
		until  time.Time
	}{
		{"late evening, across midnight", night, at(london, "2026-07-01 23:30"), london, true, at(london, "2026-07-02 07:00")},
		{"early morning", night, at(london, "2026-07-02 06:59"), london, true, at(london, "2026-07-02 07:00")},
		{"the end is outside", night, at(london, "2026-07-02 07:00"), london, false, time.Time{}},
		{"daytime", night, at(london, "2026-07-02 12:00"), london, false, time.Time{}},
		{"the start is inside", night, at(london, "2026-07-02 22:00"), london, true, at(london, "2026-07-03 07:00")},
		{"same day window", lunch, at(london, "2026-07-02 12:45"), london, true, at(london, "2026-07-02 13:30")},
		// 23:30 in London is 07:30 in Tokyo: outside Tokyo's night.
		{"the user's timezone decides", night, at(london, "2026-07-01 23:30"), tokyo, false, time.Time{}},
		{"02:00 in Tokyo is inside", night, at(tokyo, "2026-07-02 02:00"), tokyo, true, at(tokyo, "2026-07-02 07:00")},
		{"no window when start equals end", QuietHours{Start: "07:00", End: "07:00"}, at(london, "2026-07-02 07:00"), london, false, time.Time{}},
		{"malformed", QuietHours{Start: "7pm", End: "07:00"}, at(london, "2026-07-02 23:00"), london, false, time.Time{}},
	} {
		until, inside := tc.q.Holds(tc.now, tc.loc)
		if inside != tc.inside || !until.Equal(tc.until) {
			t.Errorf("%s: Holds = %v, %v; want %v, %v", tc.name, until, inside, tc.until, tc.inside)
		}
	}
}

func TestClockMinutes(t *testing.T) {
	for s, want := range map[string]int{"00:00": 0, "07:30": 450, "23:59": 1439} {
		if got, ok := ClockMinutes(s); !ok || got != want {
			t.Errorf("ClockMinutes(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, bad := range []string{"24:00", "7:30", "07:60", "0a:00", "07-30", ""} {
		if _, ok := ClockMinutes(bad); ok {
			t.Errorf("ClockMinutes(%q) ok", bad)
		}
	}
}

func TestNextClock(t *testing.T) {
	ny := zone(t, "America/New_York")
	now := time.Date(2026, 11, 28, 14, 0, 0, 0, ny)
	if got, want := NextClock(now, 9*60, ny), time.Date(2026, 11, 29, 9, 0, 0, 0, ny); !got.Equal(want) {
		t.Errorf("09:00 after 14:00 = %v, want the next morning %v", got, want)
	}
	if got, want := NextClock(now, 15*60, ny), time.Date(2026, 11, 28, 15, 0, 0, 0, ny); !got.Equal(want) {
		t.Errorf("15:00 after 14:00 = %v, want the same day %v", got, want)
	}
	if got, want := NextClock(now, 14*60, ny), time.Date(2026, 11, 29, 14, 0, 0, 0, ny); !got.Equal(want) {
		t.Errorf("14:00 at 14:00 = %v, want tomorrow %v", got, want)
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

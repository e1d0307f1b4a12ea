package app_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type importView struct {
	Rows, Imported, Created, Updated, Failed int
	Errors                                   []struct {
		Line           int
		Field, Message string
	}
}

// TestImportUsersFromCSV: good rows are created or updated, every bad row
// is reported by its line and column and skipped, and a bad header
// imports nothing.
func TestImportUsersFromCSV(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "old@example.com"})
	csv := strings.Join([]string{
		"user_id,email,phone,timezone,attr.plan",
		"ada,ada@example.com,,Europe/London,pro",             // line 2: updates ada
		"bob,not-an-email,,,",                                // line 3: bad email
		"cy,cy@example.com,(415) 555-0100,,free",             // line 4: a phone that is no E.164 number
		"dee,dee@example.com,+14155550101,Mars/Base,",        // line 5: bad timezone
		"eve,eve@example.com,+14155550102,America/New_York,", // line 6
		"ada,again@example.com,,,",                           // line 7: ada again
		"fay,fay@example.com",                                // line 8: short row
		`"gus","gus@example.com",,,`,                         // line 9: quoted
	}, "\n") + "\n"
	var got importView
	c.must(200, "POST", "/v1/users/import", csv, "Content-Type", "text/csv").decode(t, &got)
	if got.Rows != 8 || got.Imported != 3 || got.Created != 2 || got.Updated != 1 || got.Failed != 5 {
		t.Errorf("import = %+v; want 8 rows, 3 imported (2 created, 1 updated), 5 failed", got)
	}
	want := map[int]string{3: "email", 4: "phone", 5: "timezone", 7: "user_id", 8: "row"}
	for _, e := range got.Errors {
		if want[e.Line] != e.Field {
			t.Errorf("error on line %d, field %s (%s); want the fields %v", e.Line, e.Field, e.Message, want)
		}
		delete(want, e.Line)
	}
	if len(want) != 0 {
		t.Errorf("no error reported for %v: %+v", want, got.Errors)
	}
	var ada struct {
		Email, Timezone string
		Attributes      map[string]any
	}
	c.must(200, "GET", "/v1/users/ada", nil).decode(t, &ada)
	if ada.Email != "ada@example.com" || ada.Timezone != "Europe/London" || ada.Attributes["plan"] != "pro" {
		t.Errorf("ada after the import: %+v", ada)
	}
	c.must(200, "GET", "/v1/users/eve", nil)
	c.must(200, "GET", "/v1/users/gus", nil)
	c.must(404, "GET", "/v1/users/bob", nil)

	// The header is checked first: nothing of such a file is written.
	for name, body := range map[string]string{
		"unknown column": "user_id,mail\nzed,zed@example.com\n",
		"no user_id":     "email\nzed@example.com\n",
	} {
		r := c.do("POST", "/v1/users/import", body, "Content-Type", "text/csv")
		if r.status != 422 || !strings.Contains(string(r.body), "header") {
			t.Errorf("%s: %d %s, want 422 naming the header", name, r.status, r.body)
		}
	}
	if r := c.do("POST", "/v1/users/import", "user_id\nzed\n"); r.status != 400 {
		t.Errorf("JSON content type: %d %s, want 400", r.status, r.body)
	}
	c.must(404, "GET", "/v1/users/zed", nil)
}

// TestImport100kUsers times a CSV of 100,000 users with 10 bad rows
// through the API (HERALD_IMPORT_LONG=1; the figure is in docs/BENCHMARKS.md).
func TestImport100kUsers(t *testing.T) {
	if os.Getenv("HERALD_IMPORT_LONG") != "1" {
		t.Skip("the 100,000-user import runs with HERALD_IMPORT_LONG=1")
	}
	cfg := testConfig(t)
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	var b strings.Builder
	b.WriteString("user_id,email,phone,locale,timezone,attr.plan\n")
	bad := map[int]bool{}
	for i := range 100_000 {
		email := fmt.Sprintf("user%d@example.com", i)
		if i%10_000 == 5 {
			email, bad[i+2] = "broken@", true
		}
		fmt.Fprintf(&b, "user-%d,%s,+1415555%04d,en-US,America/New_York,pro\n", i, email, i%10_000)
	}
	start := time.Now()
	var got importView
	c.must(200, "POST", "/v1/users/import", b.String(), "Content-Type", "text/csv").decode(t, &got)
	took := time.Since(start)
	t.Logf("imported %d of %d rows (%d failed) in %v: %.0f rows/s", got.Imported, got.Rows, got.Failed, took, float64(got.Rows)/took.Seconds())
	if got.Rows != 100_000 || got.Imported != 99_990 || got.Failed != 10 || len(got.Errors) != 10 {
		t.Errorf("import = %d rows, %d imported, %d failed, %d errors listed", got.Rows, got.Imported, got.Failed, len(got.Errors))
	}
	for _, e := range got.Errors {
		if !bad[e.Line] || e.Field != "email" {
			t.Errorf("error %+v is not one of the bad lines", e)
		}
	}
}

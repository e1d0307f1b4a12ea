package journal_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/journal"
)

func open(t *testing.T, dir string, o journal.Options) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func appendAll(t *testing.T, j *journal.Journal, recs ...string) []func() {
	t.Helper()
	var dones []func()
	for _, r := range recs {
		done, err := j.Append([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	return dones
}

func recoverAll(t *testing.T, j *journal.Journal) []string {
	t.Helper()
	var got []string
	if _, err := j.Recover(func(rec []byte) error { got = append(got, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.jnl"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// crash abandons j as a killed process would: its lock goes, its files stay.
func crash(t *testing.T, j *journal.Journal) {
	t.Helper()
	// Close deletes only a segment with nothing pending; the records under
	// test are pending, so their files stay exactly as a crash leaves them.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendThenRecoverAfterACrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := open(t, dir, journal.Options{SegmentBytes: 64})
	want := []string{"first", "second", strings.Repeat("x", 100), "fourth", ""}
	appendAll(t, j, want...)
	crash(t, j)

	j2 := open(t, dir, journal.Options{})
	if got := recoverAll(t, j2); !slices.Equal(got, want) {
		t.Fatalf("recovered %q, want %q", got, want)
	}
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Errorf("after Recover the directory holds %v, want only the new segment", files)
	}
	// A third start has nothing to recover.
	crash(t, j2)
	j3 := open(t, dir, journal.Options{})
	if got := recoverAll(t, j3); len(got) != 0 {
		t.Errorf("recovered %q again", got)
	}
}

func TestTornTailIgnored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tear func(data []byte) []byte
	}{
		{"cut in the header", func(d []byte) []byte { return d[:len(d)-len("three")-5] }},
		{"cut in the payload", func(d []byte) []byte { return d[:len(d)-2] }},
		{"flipped byte", func(d []byte) []byte { d[len(d)-1] ^= 0xff; return d }},
		{"garbage length", func(d []byte) []byte { return append(d, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			j := open(t, dir, journal.Options{})
			appendAll(t, j, "one", "two", "three")
			crash(t, j)
			files := segmentFiles(t, dir)
			if len(files) != 1 {
				t.Fatalf("segments %v", files)
			}
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(files[0], tc.tear(data), 0o600); err != nil {
				t.Fatal(err)
			}
			want := []string{"one", "two"}
			if tc.name == "garbage length" {
				want = []string{"one", "two", "three"}
			}
			if got := recoverAll(t, open(t, dir, journal.Options{})); !slices.Equal(got, want) {
				t.Fatalf("recovered %q, want %q", got, want)
			}
		})
	}
}

func TestSegmentDeletedOnceEveryRecordIsDone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Every record fills a segment: each Append after the first starts a new one.
	j := open(t, dir, journal.Options{SegmentBytes: 10})
	dones := appendAll(t, j, "aaaa", "bbbb", "cccc")
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	dones[1]()
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Fatalf("after the second record is done: %d segments, want 2", n)
	}
	dones[1]() // twice is harmless
	dones[2]() // the current segment stays while it is written
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Fatalf("after the third: %d segments, want 2", n)
	}
	crash(t, j) // record "aaaa" is still pending
	if got := recoverAll(t, open(t, dir, journal.Options{})); !slices.Equal(got, []string{"aaaa"}) {
		t.Fatalf("recovered %q, want only the pending record", got)
	}
}

func TestCleanCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := open(t, dir, journal.Options{})
	for _, done := range appendAll(t, j, "a", "b") {
		done()
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("after a clean close: %v", files)
	}
	if _, err := j.Append([]byte("late")); err == nil {
		t.Error("Append after Close succeeded")
	}
}

func TestRecoverKeepsSegmentsWhenTheHandlerFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := open(t, dir, journal.Options{})
	appendAll(t, j, "a", "b")
	crash(t, j)

	j2 := open(t, dir, journal.Options{})
	boom := errors.New("store down")
	n, err := j2.Recover(func(rec []byte) error {
		if string(rec) == "b" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1, %v", n, err, boom)
	}
	crash(t, j2)
	if got := recoverAll(t, open(t, dir, journal.Options{})); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("the next start recovered %q, want both records again", got)
	}
}

func TestLockKeepsASecondWriterOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := open(t, dir, journal.Options{})
	if _, err := journal.Open(dir, journal.Options{}); !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = j2.Close()
}

func TestSegmentsNumberOnAcrossStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 3 {
		j := open(t, dir, journal.Options{})
		appendAll(t, j, fmt.Sprint(i))
		crash(t, j)
	}
	// Oldest first, and the names sort as numbers.
	if got := recoverAll(t, open(t, dir, journal.Options{})); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("recovered %q", got)
	}
}

func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := open(t, dir, journal.Options{SegmentBytes: 256})
	const writers, each = 8, 50
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				done, err := j.Append([]byte(fmt.Sprintf("%d-%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					done()
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	crash(t, j)
	got := recoverAll(t, open(t, dir, journal.Options{}))
	// Every odd record is pending and must come back; even ones may, when
	// they share a segment with a pending one.
	seen := map[string]bool{}
	for _, r := range got {
		seen[r] = true
	}
	for w := range writers {
		for i := 1; i < each; i += 2 {
			if r := fmt.Sprintf("%d-%d", w, i); !seen[r] {
				t.Errorf("pending record %s not recovered", r)
			}
		}
	}
}

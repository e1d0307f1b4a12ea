package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsersImport: the CLI posts a CSV file and says what was imported and
// which lines were not, failing when any was not.
func TestUsersImport(t *testing.T) {
	env, _, _ := deadLetterServer(t)
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte("user_id,email,phone\nann,ann@example.com,+14155550100\nbo,nope,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, env, "users", "import", file)
	wantCode(t, r, 1)
	for _, want := range []string{"2 rows read", "1 imported (1 new, 0 updated), 1 skipped", "line 3, email"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "fix the lines above") {
		t.Errorf("stderr = %q, want what to do next", r.stderr)
	}
	good := filepath.Join(t.TempDir(), "good.csv")
	if err := os.WriteFile(good, []byte("user_id,email\nann,ann@example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "users", "import", good, "--json")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, `"updated":1`) {
		t.Errorf("--json = %s, want one updated", r.stdout)
	}
	wantCode(t, run(t, env, "users", "import"), 2)
	wantCode(t, run(t, env, "users", "export", good), 2)
}

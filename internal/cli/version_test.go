package cli

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/webpush"
)

func TestVersionPrintsBuildInfo(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "version")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if lines[0] != "herald "+Version {
		t.Errorf("first line %q, want %q", lines[0], "herald "+Version)
	}
	if want := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; !strings.Contains(r.stdout, want) {
		t.Errorf("version output %q does not name the toolchain %q", r.stdout, want)
	}
	if !strings.Contains(r.stdout, "commit:") {
		t.Errorf("version output %q has no commit line", r.stdout)
	}

	r = run(t, nil, "version", "--json")
	wantCode(t, r, 0)
	var info struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
		OS        string `json:"os"`
		Arch      string `json:"arch"`
		Modified  *bool  `json:"modified"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("version --json: %v\n%s", err, r.stdout)
	}
	if info.Version != Version || info.GoVersion != runtime.Version() || info.OS != runtime.GOOS || info.Arch != runtime.GOARCH || info.Modified == nil {
		t.Errorf("version --json = %s", r.stdout)
	}

	wantCode(t, run(t, nil, "version", "--bogus"), 2)
}

// TestVAPIDPrintsAKeyPairTheProviderTakes: the printed pair is accepted by
// the webpush provider's settings, which check that the two keys match,
// and each run makes a new pair.
func TestVAPIDPrintsAKeyPairTheProviderTakes(t *testing.T) {
	t.Parallel()
	var first string
	for i := range 2 {
		r := run(t, nil, "vapid")
		wantCode(t, r, 0)
		var keys map[string]string
		if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
			t.Fatalf("vapid output: %v\n%s", err, r.stdout)
		}
		keys["subject"] = "mailto:ops@example.com"
		raw, _ := json.Marshal(keys)
		if _, err := webpush.New(raw, herald.ProviderEnv{HTTPClient: http.DefaultClient}); err != nil {
			t.Fatalf("webpush settings %s refused: %v", raw, err)
		}
		if i == 0 {
			first = keys["vapid_private_key"]
		} else if keys["vapid_private_key"] == first {
			t.Error("two runs printed the same private key")
		}
	}
	wantCode(t, run(t, nil, "vapid", "extra"), 2)
}

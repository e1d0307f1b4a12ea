package herald_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the Dockerfile's essentials (docker itself is not
// needed): a static binary, a distroless or scratch final stage running as
// nonroot, /data as the volume, and Herald listening on every interface.
// Then it runs the Dockerfile's own build command and the binary it makes.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ")
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	lastFrom := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			lastFrom = i
		}
	}
	if lastFrom < 1 {
		t.Fatalf("want a multi-stage Dockerfile, found its last FROM at instruction %d", lastFrom)
	}
	final := lines[lastFrom:]
	if img := strings.Fields(final[0])[1]; !strings.HasPrefix(img, "gcr.io/distroless/static") && img != "scratch" {
		t.Errorf("final stage is %s, want distroless static or scratch", img)
	}
	want := map[string]bool{"USER nonroot": false, "VOLUME /data": false, "EXPOSE 8080": false, `ENTRYPOINT ["/herald", "serve"]`: false}
	var env string
	for _, l := range final {
		if _, ok := want[l]; ok {
			want[l] = true
		}
		if strings.HasPrefix(l, "ENV ") {
			env += l
		}
	}
	for l, found := range want {
		if !found {
			t.Errorf("final stage lacks %q", l)
		}
	}
	for _, kv := range []string{"HERALD_DATA_DIR=/data", "HERALD_HTTP_ADDR=0.0.0.0:8080"} {
		if !strings.Contains(env, kv) {
			t.Errorf("final stage does not set %s", kv)
		}
	}

	var build string
	for _, l := range lines[:lastFrom] {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			build = strings.TrimPrefix(l, "RUN ")
		}
	}
	for _, part := range []string{"CGO_ENABLED=0", "-trimpath", "-X github.com/heraldhq/herald/internal/cli.Version=${VERSION}", "-o /out/herald", "./cmd/herald"} {
		if !strings.Contains(build, part) {
			t.Fatalf("the build command %q lacks %q", build, part)
		}
	}
	if testing.Short() {
		t.Skip("the build itself is skipped with -short")
	}
	// The same command, with the output in a temporary directory.
	out := filepath.Join(t.TempDir(), "herald")
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(build, "/out/herald", out))
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-dockerfile-test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	b, err := exec.Command(out, "version", "--json").Output()
	if err != nil {
		t.Fatalf("herald version --json: %v", err)
	}
	var info struct{ Version, GoVersion string }
	if err := json.Unmarshal(b, &info); err != nil || info.Version != "v0.0.0-dockerfile-test" {
		t.Errorf("herald version --json = %s (%v), want version v0.0.0-dockerfile-test", b, err)
	}
}

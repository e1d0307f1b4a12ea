package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/heraldhq/herald", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0d890f4c"}, {Key: "vcs.time", Value: "2026-11-28T08:00:00Z"},
			{Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    Info
	}{
		{"the -ldflags version wins", "v2.0.0", stamped, Info{Version: "v2.0.0", Revision: "0d890f4c", Time: "2026-11-28T08:00:00Z", Modified: true, GoVersion: "go1.26.1"}},
		{"dev falls back to the module version", "dev", stamped, Info{Version: "v1.4.0", Revision: "0d890f4c", Time: "2026-11-28T08:00:00Z", Modified: true, GoVersion: "go1.26.1"}},
		{"a devel module keeps dev", "dev", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}}, Info{Version: "dev", GoVersion: "go1.26.1"}},
		{"no build info", "", nil, Info{Version: "dev"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromBuildInfo(tt.version, tt.bi)
			got.OS, got.Arch = "", ""
			if tt.bi == nil {
				got.GoVersion = ""
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	text := fromBuildInfo("v2.0.0", stamped).String()
	for _, want := range []string{"herald v2.0.0\n", "commit:      0d890f4c (modified)", "commit time: 2026-11-28T08:00:00Z", "go:          go1.26.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("String() = %q, want it to contain %q", text, want)
		}
	}
}

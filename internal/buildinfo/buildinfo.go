// Package buildinfo describes the running binary: the version it was
// given at build time, and what the Go toolchain stamped into it (the
// commit, its time, whether the tree had local changes, the Go version).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what `herald version` prints and `herald_build_info` carries.
type Info struct {
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from; empty when the
	// build had no VCS information (go build -buildvcs=false, or outside a
	// checkout, as in a container build from a copied tree).
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time, RFC 3339.
	Time string `json:"time,omitempty"`
	// Modified reports a build from a tree with uncommitted changes.
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Read returns the running binary's build information. version is the
// one set with -ldflags -X; when it is "dev" or empty, the main module's
// version is used if the toolchain recorded a real one (go install
// module@v1.2.3, or a VCS-stamped pseudo-version).
func Read(version string) Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(version, bi)
}

// fromBuildInfo is Read with the toolchain's record given (nil for none).
func fromBuildInfo(version string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		return fill(info)
	}
	if (version == "" || version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return fill(info)
}

func fill(info Info) Info {
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String is the text of `herald version`: "herald <version>" on the first
// line, then the commit and the toolchain.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "herald %s\n", i.Version)
	if i.Revision != "" {
		fmt.Fprintf(&b, "commit:      %s", i.Revision)
		if i.Modified {
			b.WriteString(" (modified)")
		}
		b.WriteString("\n")
		if i.Time != "" {
			fmt.Fprintf(&b, "commit time: %s\n", i.Time)
		}
	} else {
		b.WriteString("commit:      unknown (built without VCS information)\n")
	}
	fmt.Fprintf(&b, "go:          %s %s/%s\n", i.GoVersion, i.OS, i.Arch)
	return b.String()
}

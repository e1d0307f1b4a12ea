package herald_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/heraldhq/herald"

// TestImportsPointInward keeps the house standing: the domain imports
// nothing of ours, adapters import neither roles nor each other, roles
// import no adapters, and only internal/app picks concrete adapters.
func TestImportsPointInward(t *testing.T) {
	imports := packageImports(t)
	if len(imports) < 10 {
		t.Fatalf("found only %d packages: the walk is broken", len(imports))
	}
	adapters := []string{"internal/store/sqlite", "internal/store/postgres", "internal/queue", "internal/natsembed",
		"internal/provider/smtp", "internal/provider/log", "internal/provider/apns", "internal/provider/fcm",
		"internal/provider/webpush", "internal/provider/twilio", "internal/provider/sendgrid", "internal/provider/failover",
		"internal/secret", "internal/ratelimit"}
	roles := []string{"internal/accept", "internal/deliver", "internal/track", "internal/reconcile", "internal/logwriter", "internal/deadletter", "internal/webhook"}
	isAny := func(pkg string, list []string) bool {
		for _, l := range list {
			if pkg == l || strings.HasPrefix(pkg, l+"/") {
				return true
			}
		}
		return false
	}
	for pkg, deps := range imports {
		for _, dep := range deps {
			if !strings.HasPrefix(dep, module) {
				if pkg == "." && strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") {
					t.Errorf("the domain package imports %s: it may import the standard library only", dep)
				}
				continue
			}
			d := strings.TrimPrefix(strings.TrimPrefix(dep, module), "/")
			switch {
			case pkg == ".":
				t.Errorf("the domain package imports %s", d)
			case strings.HasPrefix(pkg, "cmd/") && d != "internal/cli":
				t.Errorf("%s imports %s: cmd imports only internal/cli", pkg, d)
			case isAny(pkg, adapters) && d != "" && !strings.HasPrefix(d, "internal/store/internal/") && !strings.HasPrefix(d, "internal/provider/internal/") && d != "internal/netguard" && !isAny(d, []string{pkg}):
				t.Errorf("adapter %s imports %s: adapters import only the domain and their SDKs", pkg, d)
			case isAny(pkg, roles) && (isAny(d, adapters) || isAny(d, []string{"internal/app", "internal/cli", "internal/httpapi"})):
				t.Errorf("role %s imports %s: roles declare the interfaces they need", pkg, d)
			case pkg == "internal/httpapi" && isAny(d, append(adapters, roles...)):
				t.Errorf("httpapi imports %s: it gets its dependencies from internal/app", d)
			case isAny(d, adapters) && pkg != "internal/app" && !isAny(pkg, adapters):
				t.Errorf("%s imports the adapter %s: only internal/app picks implementations", pkg, d)
			}
		}
	}
}

// packageImports maps each package directory (relative, "." for the root)
// to the imports of its non-test files.
func packageImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			out[dir] = append(out[dir], strings.Trim(imp.Path.Value, `"`))
		}
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

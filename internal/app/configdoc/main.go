// Command configdoc rewrites the configuration reference of
// docs/operations.md from the Config struct: run it from the repository's
// root after adding or changing a setting.
//
//	go run ./internal/app/configdoc
package main

import (
	"fmt"
	"os"

	"github.com/heraldhq/herald/internal/app"
)

func main() {
	const path = "docs/operations.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err, "(run it from the repository's root)")
		os.Exit(1)
	}
	doc, ok := app.ReplaceConfigReference(string(raw))
	if !ok {
		fmt.Fprintf(os.Stderr, "configdoc: %s lacks the markers %q and %q\n", path, app.ConfigReferenceBegin, app.ConfigReferenceEnd)
		os.Exit(1)
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

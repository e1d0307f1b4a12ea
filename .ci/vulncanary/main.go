// Command vulncanary calls a function with a known vulnerability
// (golang.org/x/text v0.3.7, language.ParseAcceptLanguage: GO-2022-1059), so that
// .ci/vulncheck can show its local database finds one: a check that
// finds nothing there is broken, not clean.
package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() {
	fmt.Println(language.ParseAcceptLanguage("en-US,en;q=0.9"))
}

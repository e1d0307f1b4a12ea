// Command herald runs the Herald notification system and its tools.
package main

import (
	_ "time/tzdata" // IANA timezones even on hosts without zoneinfo files

	"context"
	"os"

	"github.com/heraldhq/herald/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// Package heraldtest holds test helpers shared by Herald's packages:
// addresses of the real services tests talk to, builders and a clock.
// It never mocks Herald's own interfaces.
package heraldtest

import (
	"os"
	"testing"
)

// Environment variables naming the external services tests use.
const (
	EnvPostgres = "HERALD_TEST_POSTGRES_URL"
	EnvRedis    = "HERALD_TEST_REDIS_URL"
	EnvNATS     = "HERALD_TEST_NATS_URL"
)

// ServiceURL returns the URL in the environment variable env. Without it
// the test is skipped with a message saying how to enable it, unless
// CI=true, where a missing service fails the test.
func ServiceURL(t testing.TB, env string) string {
	t.Helper()
	if u := os.Getenv(env); u != "" {
		return u
	}
	msg := env + " is not set; set it to run this test (bash .ci/run sets it, e.g. " + example(env) + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func example(env string) string {
	switch env {
	case EnvPostgres:
		return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	case EnvRedis:
		return "redis://127.0.0.1:6379/0"
	case EnvNATS:
		return "nats://127.0.0.1:<port of a nats-server >= 2.10.23>"
	}
	return "a URL"
}

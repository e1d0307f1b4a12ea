package app

import "testing"

func TestPostgresTLSWarning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url  string
		warn bool
	}{
		{"postgres://u:p@db.example.com:5432/herald?sslmode=disable", true},
		{"postgres://u:p@db.example.com/herald", true}, // pgx's default is prefer
		{"postgres://u:p@db.example.com/herald?sslmode=prefer", true},
		{"postgres://u:p@10.0.0.5/herald?sslmode=allow", true},
		{"postgres://u@a.example.com,b.example.com/herald?sslmode=disable", true},
		{"postgres://u:p@db.example.com/herald?sslmode=require", false},
		{"postgres://u:p@db.example.com/herald?sslmode=verify-full&sslrootcert=/etc/ca.pem", false},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", false},
		{"postgres://postgres@localhost/test?sslmode=disable", false},
		{"postgres://postgres@[::1]:5432/test", false},
		{"postgres:///herald?host=/var/run/postgresql", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := postgresTLSWarning(tc.url) != ""; got != tc.warn {
			t.Errorf("postgresTLSWarning(%q) warns = %v, want %v", tc.url, got, tc.warn)
		}
	}
}

func TestNATSPlainRemote(t *testing.T) {
	t.Parallel()
	cases := []struct {
		c    Config
		warn bool
	}{
		{Config{NATSURL: "nats://nats-1.internal:4222,nats://nats-2.internal:4222"}, true},
		{Config{NATSURL: "nats://127.0.0.1:4222,nats://10.0.0.7:4222"}, true},
		{Config{NATSURL: "nats://nats-1.internal:4222", NATSCAFile: "/etc/ca.pem"}, false},
		{Config{NATSURL: "tls://nats-1.internal:4222"}, false},
		{Config{NATSURL: "nats://nats-1.internal:4222", NATSTLS: true}, false},
		{Config{NATSURL: "nats://127.0.0.1:4222,nats://localhost:4223"}, false},
		{Config{}, false},
	}
	for _, tc := range cases {
		if got := natsPlainRemote(tc.c); got != tc.warn {
			t.Errorf("natsPlainRemote(%+v) = %v, want %v", tc.c.NATSURL, got, tc.warn)
		}
	}
}

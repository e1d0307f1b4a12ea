package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// natsSecurity returns the connect options of an external NATS: TLS (a CA
// of its own, a client certificate, the server name to verify) and one way
// to authenticate (user and password, token, .creds file or NKey seed).
// Credentials in the URL (nats://user:pass@host) keep working as nats.go
// reads them.
func natsSecurity(c Config) ([]nats.Option, error) {
	var opts []nats.Option
	if natsTLS(c) {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.NATSServerName}
		if c.NATSCAFile != "" {
			pem, err := os.ReadFile(c.NATSCAFile)
			if err != nil {
				return nil, fmt.Errorf("nats-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("nats-ca-file %s: no PEM certificate in it", c.NATSCAFile)
			}
			tc.RootCAs = pool
		}
		if c.NATSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.NATSCertFile, c.NATSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats-cert-file and nats-key-file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	switch {
	case c.NATSUser != "":
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	case c.NATSToken != "":
		opts = append(opts, nats.Token(c.NATSToken))
	case c.NATSCredsFile != "":
		opts = append(opts, nats.UserCredentials(c.NATSCredsFile))
	case c.NATSNKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NATSNKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats-nkey-file: %w", err)
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// natsTLS reports whether the external NATS connection uses TLS.
func natsTLS(c Config) bool {
	return c.NATSTLS || c.NATSCAFile != "" || c.NATSCertFile != "" || c.NATSServerName != "" ||
		strings.Contains(c.NATSURL, "tls://")
}

// natsHint says which settings a failed connection most likely lacks.
func natsHint(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "authorization") || strings.Contains(msg, "authentication"):
		return " (the server refused the credentials: check nats-user/nats-password, nats-token, nats-creds-file or nats-nkey-file)"
	case strings.Contains(msg, "tls") || strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
		return " (TLS failed: check nats-tls, nats-ca-file, nats-server-name and, if the server verifies clients, nats-cert-file and nats-key-file)"
	}
	return ""
}

// postgresTLSWarning returns why a Postgres URL leaves the connection
// unprotected on the network, or "" when it does not: a host other than
// loopback or a Unix socket with sslmode disable, allow or prefer (pgx's
// default), which all fall back to plain text. TLS itself is pgx's, from
// the URL's sslmode, sslrootcert, sslcert and sslkey, passed through as
// given.
func postgresTLSWarning(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	hosts := strings.Split(u.Host, ",")
	if h := q.Get("host"); h != "" {
		hosts = strings.Split(h, ",")
	}
	remote := anyRemote(hosts)
	mode := q.Get("sslmode")
	if !remote || mode == "require" || mode == "verify-ca" || mode == "verify-full" {
		return ""
	}
	if mode == "" {
		mode = "prefer (the default)"
	}
	return "the Postgres URL names a host that is not loopback with sslmode=" + mode +
		", which allows a plain-text connection: use sslmode=verify-full with sslrootcert=<CA file>"
}

// anyRemote reports whether any of the hosts (host or host:port, possibly
// bracketed) is neither loopback nor a Unix socket path.
func anyRemote(hosts []string) bool {
	for _, h := range hosts {
		host := h
		if hh, _, err := net.SplitHostPort(h); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			continue
		}
		return true
	}
	return false
}

// natsPlainRemote reports whether an external NATS is reached in plain
// text beyond loopback.
func natsPlainRemote(c Config) bool {
	if c.NATSURL == "" || natsTLS(c) {
		return false
	}
	var hosts []string
	for _, raw := range strings.Split(c.NATSURL, ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
			hosts = append(hosts, u.Host)
		}
	}
	return anyRemote(hosts)
}

package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	useTLS := c.NATSTLS || c.NATSCAFile != "" || c.NATSCertFile != "" || c.NATSServerName != "" ||
		strings.Contains(c.NATSURL, "tls://")
	if useTLS {
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

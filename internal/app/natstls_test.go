package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/clustertest"
)

// testPKI is a CA with a server certificate for the name nats.test only
// (not 127.0.0.1, so a client must be told the name) and a client
// certificate, all as PEM files in dir.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey, otherCA string }

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, k, der
	}
	ca, caKey, caDER := newCA("herald test CA")
	_, _, otherDER := newCA("another CA")
	leaf := func(serial int64, usage x509.ExtKeyUsage, dns []string) ([]byte, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, keyDER(k)
	}
	sc, sk := leaf(2, x509.ExtKeyUsageServerAuth, []string{"nats.test"})
	cc, ck := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return testPKI{ca: write("ca.pem", "CERTIFICATE", caDER), otherCA: write("other-ca.pem", "CERTIFICATE", otherDER),
		serverCert: write("server.pem", "CERTIFICATE", sc), serverKey: write("server-key.pem", "PRIVATE KEY", sk),
		clientCert: write("client.pem", "CERTIFICATE", cc), clientKey: write("client-key.pem", "PRIVATE KEY", ck)}
}

// startSecureNATS runs a nats-server with JetStream that requires TLS with
// a client certificate and a user and password, and returns its URL.
func startSecureNATS(t *testing.T, pki testPKI, user, password string) string {
	t.Helper()
	bin := clustertest.NATSServerBinary(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
jetstream { store_dir: %q }
tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
authorization { user: %q, password: %q }
`, port, filepath.Join(dir, "js"), pki.serverCert, pki.serverKey, pki.ca, user, password)
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nats-server log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// TestExternalNATSWithTLSAndCredentials: against a nats-server that
// requires TLS, a client certificate and a password, Herald connects with
// the right settings and works, and without any one of them it refuses to
// start with an error that says what to check.
func TestExternalNATSWithTLSAndCredentials(t *testing.T) {
	pki := newTestPKI(t, t.TempDir())
	url := startSecureNATS(t, pki, "herald", "s3cret-pass")
	good := func() app.Config {
		cfg := testConfig(t)
		cfg.NATSURL = url
		cfg.NATSReplicas = 1
		cfg.NATSPrefix = fmt.Sprintf("tls%d", time.Now().UnixNano())
		cfg.NATSCAFile, cfg.NATSCertFile, cfg.NATSKeyFile = pki.ca, pki.clientCert, pki.clientKey
		cfg.NATSServerName = "nats.test"
		cfg.NATSUser, cfg.NATSPassword = "herald", "s3cret-pass"
		return cfg
	}

	t.Run("right settings", func(t *testing.T) {
		a := start(t, good())
		c := newAPI(t, a, newApp(t, a, "shop"))
		c.must(200, "GET", "/readyz", nil)
		c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "log"}})
		var acc struct{ ID string }
		c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"email": "ada@example.com"}},
			"content": map[string]any{"body": "hello", "subject": "hi"}}).decode(t, &acc)
		if n := c.waitDone(acc.ID, 30*time.Second); n.Deliveries[0].Status != "sent" {
			t.Errorf("delivery over the TLS queue = %+v, want sent", n.Deliveries[0])
		}
	})

	cases := []struct {
		name   string
		change func(*app.Config)
		want   string
	}{
		{"wrong password", func(c *app.Config) { c.NATSPassword = "guess" }, "refused the credentials"},
		{"no credentials", func(c *app.Config) { c.NATSUser, c.NATSPassword = "", "" }, "refused the credentials"},
		{"unknown CA", func(c *app.Config) { c.NATSCAFile = pki.otherCA }, "TLS failed"},
		{"no server name", func(c *app.Config) { c.NATSServerName = "" }, "TLS failed"},
		{"no client certificate", func(c *app.Config) { c.NATSCertFile, c.NATSKeyFile = "", "" }, ""},
		{"no TLS", func(c *app.Config) {
			c.NATSCAFile, c.NATSCertFile, c.NATSKeyFile, c.NATSServerName = "", "", "", ""
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.change(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			a := app.New(cfg, testLogger(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := a.Start(ctx)
			if err == nil {
				_ = a.Stop(ctx)
				t.Fatal("Herald started without the settings the server requires")
			}
			if !strings.Contains(err.Error(), "connect to NATS") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("start error = %v, want a NATS connection error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-pass") {
				t.Errorf("start error shows the password: %v", err)
			}
		})
	}
}

package docs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
)

// channelOf is the channel each provider kind's example is put on.
var channelOf = map[string]string{"apns": "push", "fcm": "push", "webpush": "push",
	"twilio": "sms", "sendgrid": "email", "smtp": "email"}

// TestProvidersDocExamplesAreAccepted puts every JSON example of
// docs/providers.md through PUT /v1/providers/{channel} of a real Herald,
// with the shortened keys replaced by freshly generated ones of the same
// kind: each must be answered 200.
func TestProvidersDocExamplesAreAccepted(t *testing.T) {
	md, err := os.ReadFile("providers.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```json\n(.*?)^```").FindAllStringSubmatch(string(md), -1)
	if len(blocks) < 7 {
		t.Fatalf("providers.md has %d json examples, want one per provider kind and the failover one", len(blocks))
	}

	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	_, key, err := app.CreateApp(ctx, a.Store(), "docs", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	kinds := map[string]bool{}
	for i, b := range blocks {
		var entries []map[string]any
		if err := json.Unmarshal([]byte(b[1]), &entries); err != nil {
			t.Errorf("example %d is not a JSON provider list: %v\n%s", i, err, b[1])
			continue
		}
		if len(entries) == 0 {
			t.Errorf("example %d is an empty list", i)
			continue
		}
		channel := channelOf[entries[0]["kind"].(string)]
		for _, e := range entries {
			kind, _ := e["kind"].(string)
			kinds[kind] = true
			settings, _ := e["settings"].(map[string]any)
			if settings == nil {
				t.Fatalf("example %d: an entry without settings", i)
			}
			substituteKeys(t, kind, settings)
		}
		body, _ := json.Marshal(entries)
		req, _ := http.NewRequest(http.MethodPut, "http://"+a.Addr()+"/v1/providers/"+channel, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("example %d (%s): PUT /v1/providers/%s answered %d: %s", i, entries[0]["kind"], channel, res.StatusCode, answer)
		}
	}
	for kind := range channelOf {
		if !kinds[kind] {
			t.Errorf("providers.md has no example for %s", kind)
		}
	}
}

// substituteKeys replaces the shortened keys of an example by generated
// ones of the shape the provider's documentation describes.
func substituteKeys(t *testing.T, kind string, s map[string]any) {
	t.Helper()
	switch kind {
	case "apns":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s["private_key"] = pkcs8PEM(t, k)
	case "fcm":
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		s["service_account"].(map[string]any)["private_key"] = pkcs8PEM(t, k)
	case "webpush":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := k.PublicKey.Bytes()
		priv, _ := k.Bytes()
		s["vapid_public_key"] = base64.RawURLEncoding.EncodeToString(pub)
		s["vapid_private_key"] = base64.RawURLEncoding.EncodeToString(priv)
	case "sendgrid":
		if _, ok := s["webhook_public_key"]; ok {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			s["webhook_public_key"] = base64.StdEncoding.EncodeToString(der)
		}
	}
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

package sink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
)

// ProviderSettings returns the settings of every Herald provider kind the
// sink answers for, pointed at the sink at url (and smtpAddr, if any) and
// trusting caPEM, with fresh throwaway credentials: the sink checks none.
func ProviderSettings(url, smtpAddr string, caPEM []byte) (map[string]json.RawMessage, error) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sink: apns key: %w", err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		return nil, fmt.Errorf("sink: apns key: %w", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sink: fcm key: %w", err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		return nil, fmt.Errorf("sink: fcm key: %w", err)
	}
	vapid, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sink: vapid key: %w", err)
	}
	vapidPub, err := vapid.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("sink: vapid key: %w", err)
	}
	vapidPriv, err := vapid.Bytes()
	if err != nil {
		return nil, fmt.Errorf("sink: vapid key: %w", err)
	}
	ca := string(caPEM)
	all := map[string]any{
		KindAPNs: map[string]string{"team_id": "BENCHTEAM1", "key_id": "BENCHKEY01", "topic": "dev.herald.bench",
			"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})),
			"endpoint":    url, "ca_pem": ca},
		KindFCM: map[string]any{"project_id": "herald-bench", "endpoint": url, "ca_pem": ca,
			"service_account": map[string]string{"type": "service_account", "project_id": "herald-bench",
				"client_email": "bench@herald-bench.iam.gserviceaccount.com", "private_key_id": "bench",
				"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})),
				"token_uri":   url + "/token"}},
		KindTwilio: map[string]string{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "bench",
			"from": "+15005550006", "endpoint": url, "ca_pem": ca},
		KindSendGrid: map[string]string{"api_key": "SG.bench", "from": "bench@herald.invalid", "endpoint": url, "ca_pem": ca},
		KindWebPush: map[string]string{"vapid_public_key": base64.RawURLEncoding.EncodeToString(vapidPub),
			"vapid_private_key": base64.RawURLEncoding.EncodeToString(vapidPriv),
			"subject":           "mailto:bench@herald.invalid", "ca_pem": ca},
	}
	if smtpAddr != "" {
		all[KindSMTP] = map[string]string{"endpoint": smtpAddr, "from": "bench@herald.invalid", "tls": "none"}
	}
	out := map[string]json.RawMessage{}
	for k, v := range all {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out[k] = raw
	}
	return out, nil
}

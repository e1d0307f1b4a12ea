package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/heraldhq/herald/internal/buildinfo"
)

// version prints the build information, as text or JSON.
func version(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, `print {"version", "revision", "time", "modified", "go_version", "os", "arch"} as JSON`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	info := buildinfo.Read(Version)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(info)
	}
	_, err := fmt.Fprint(stdout, info)
	return err
}

// vapid prints a new VAPID key pair (RFC 8292) in the form the webpush
// provider's settings take: base64url of the uncompressed public point and
// of the private scalar.
func vapid(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald vapid", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: herald vapid\n\nPrints a new VAPID key pair as JSON: {\"vapid_public_key\", \"vapid_private_key\"}.\n"+
			"The public key is the applicationServerKey browsers subscribe with; keep the private key secret.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("vapid: unexpected argument %q", fs.Arg(0))}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("vapid: generate key: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return fmt.Errorf("vapid: public key: %w", err)
	}
	priv, err := key.Bytes()
	if err != nil {
		return fmt.Errorf("vapid: private key: %w", err)
	}
	return json.NewEncoder(stdout).Encode(map[string]string{
		"vapid_public_key":  base64.RawURLEncoding.EncodeToString(pub),
		"vapid_private_key": base64.RawURLEncoding.EncodeToString(priv),
	})
}

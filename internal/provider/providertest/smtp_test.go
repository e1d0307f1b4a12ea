package providertest_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

// The fake is driven here by the standard library's client, independent of
// the go-mail client the smtp provider uses.

func TestSMTPServerRecords(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@example.com>\r\n\r\nhello\r\n"
	done := make(chan error, 1)
	go func() {
		done <- smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.org"}, []byte(msg))
	}()
	got := srv.WaitForMessages(t, 1, 10*time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := got[0]
	if m.From != "a@example.com" || len(m.To) != 1 || m.To[0] != "b@example.org" {
		t.Errorf("envelope = %q -> %q", m.From, m.To)
	}
	if m.MessageID != "<m1@example.com>" || m.Subject != "Grüße" {
		t.Errorf("MessageID = %q, Subject = %q", m.MessageID, m.Subject)
	}
	if !strings.Contains(string(m.Data), "hello") {
		t.Errorf("Data = %q", m.Data)
	}
}

func TestSMTPServerRejects(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t,
		providertest.RejectRecipient("Gone@Example.org", 550, [3]int{5, 1, 1}, "No such user"),
		providertest.FailData(554, "Spam"))
	err := smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"gone@example.org"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "550") || !strings.Contains(err.Error(), "5.1.1 No such user") {
		t.Errorf("rejected recipient: err = %v", err)
	}
	err = smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.org"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "554") {
		t.Errorf("failed DATA: err = %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("stored %d messages, want 0", n)
	}
}

func TestSMTPServerImplicitTLSAndAuth(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t, providertest.WithImplicitTLS(), providertest.WithAuth("u", "p"))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(srv.CAPEM())) {
		t.Fatal("CAPEM holds no certificate")
	}
	conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.com"); err == nil {
		t.Fatal("MAIL before AUTH was accepted")
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
}

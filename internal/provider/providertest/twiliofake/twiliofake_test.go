package twiliofake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/heraldhq/herald/internal/provider/providertest/specs"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "secret-token"
)

type answer struct {
	status int
	header http.Header
	body   []byte
	err    apiError
}

type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func post(t *testing.T, srv *twiliofake.Server, path, user, pass, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode != http.StatusCreated {
		if err := json.Unmarshal(data, &a.err); err != nil {
			t.Fatalf("error answer %d is not JSON: %s", resp.StatusCode, data)
		}
		if a.err.Status != resp.StatusCode {
			t.Errorf("error status member %d, HTTP status %d", a.err.Status, resp.StatusCode)
		}
	}
	return a
}

func messages(s string) string { return "/2010-04-01/Accounts/" + s + "/Messages.json" }

const form = "application/x-www-form-urlencoded"

func valid() url.Values {
	return url.Values{"To": {"+14155550100"}, "From": {"+14155550199"}, "Body": {"Hello"}}
}

// TestAccepted checks the 201 answer against the official description,
// independently of the fake's own request validation.
func TestAccepted(t *testing.T) {
	t.Parallel()
	srv := twiliofake.New(t, twiliofake.WithAccount(sid, token))
	a := post(t, srv, messages(sid), sid, token, form, valid().Encode())
	if a.status != http.StatusCreated {
		t.Fatalf("status = %d: %s", a.status, a.body)
	}
	var msg struct {
		SID         string `json:"sid"`
		Status      string `json:"status"`
		NumSegments string `json:"num_segments"`
		To          string `json:"to"`
		AccountSID  string `json:"account_sid"`
	}
	if err := json.Unmarshal(a.body, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.SID) != 34 || !strings.HasPrefix(msg.SID, "SM") || msg.Status != "queued" ||
		msg.NumSegments != "1" || msg.To != "+14155550100" || msg.AccountSID != sid {
		t.Errorf("message = %+v", msg)
	}

	doc, err := openapi3.NewLoader().LoadFromData(specs.TwilioAPI)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, messages(sid), nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 a.status, Header: a.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(a.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("the 201 answer does not match the description: %v", err)
	}
	if srv.Received() != 1 || len(srv.Requests()) != 1 || srv.Requests()[0].Get("Body") != "Hello" {
		t.Errorf("Received = %d, Requests = %v", srv.Received(), srv.Requests())
	}
}

func TestSegmentsInAnswer(t *testing.T) {
	t.Parallel()
	srv := twiliofake.New(t, twiliofake.WithAccount(sid, token))
	for _, tc := range []struct {
		body string
		want string
	}{
		{strings.Repeat("a", 160), "1"},
		{strings.Repeat("a", 161), "2"},
		{strings.Repeat("é", 70), "1"}, // é is GSM-7
		{strings.Repeat("ł", 71), "2"}, // ł is not
	} {
		v := valid()
		v.Set("Body", tc.body)
		a := post(t, srv, messages(sid), sid, token, form, v.Encode())
		var msg struct {
			NumSegments string `json:"num_segments"`
		}
		if err := json.Unmarshal(a.body, &msg); err != nil || msg.NumSegments != tc.want {
			t.Errorf("%d runes: num_segments = %q (%v), want %q", len([]rune(tc.body)), msg.NumSegments, err, tc.want)
		}
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	srv := twiliofake.New(t, twiliofake.WithAccount(sid, token))
	other := "AC" + strings.Repeat("f", 32)
	srv.Account(other, "other-token")
	with := func(k, v string) string {
		f := valid()
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f.Encode()
	}
	for _, tc := range []struct {
		name              string
		path, user, pass  string
		contentType, body string
		status, code      int
	}{
		{"no auth", messages(sid), "", "", form, valid().Encode(), 401, 20003},
		{"wrong token", messages(sid), sid, "nope", form, valid().Encode(), 401, 20003},
		{"unknown account", messages("AC" + strings.Repeat("0", 32)), "AC" + strings.Repeat("0", 32), token, form, valid().Encode(), 401, 20003},
		{"other account's path", messages(other), sid, token, form, valid().Encode(), 401, 20003},
		{"unknown path", "/2010-04-01/Accounts/" + sid + "/Calls/x.json", sid, token, form, valid().Encode(), 404, 20404},
		{"JSON body", messages(sid), sid, token, "application/json", `{"To":"+14155550100"}`, 400, 21620},
		{"no To", messages(sid), sid, token, form, with("To", ""), 400, 21604},
		{"no From", messages(sid), sid, token, form, with("From", ""), 400, 21603},
		{"no Body", messages(sid), sid, token, form, with("Body", ""), 400, 21602},
		{"bad MessagingServiceSid", messages(sid), sid, token, form, with("MessagingServiceSid", "MGnope"), 400, 21620},
		{"Body too long", messages(sid), sid, token, form, with("Body", strings.Repeat("x", 1601)), 400, 21617},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, srv, tc.path, tc.user, tc.pass, tc.contentType, tc.body)
			if a.status != tc.status || a.err.Code != tc.code {
				t.Errorf("answer %d code %d (%s), want %d code %d", a.status, a.err.Code, a.err.Message, tc.status, tc.code)
			}
		})
	}
	if srv.Received() != 0 {
		t.Errorf("Received = %d, want 0", srv.Received())
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	srv := twiliofake.New(t, twiliofake.WithAccount(sid, token))
	srv.FailNext(1, 429, 20429, 1500*time.Millisecond)
	srv.FailNext(1, 503, 0, 0)
	srv.StopNumber("+14155550111")
	srv.InvalidNumber("+14155550122")

	a := post(t, srv, messages(sid), sid, token, form, valid().Encode())
	if a.status != 429 || a.err.Code != 20429 || a.header.Get("Retry-After") != "2" {
		t.Errorf("first: %d code %d Retry-After %q", a.status, a.err.Code, a.header.Get("Retry-After"))
	}
	resp, err := srv.Client().Do(mustRequest(t, srv, valid()))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("second: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, tc := range []struct {
		to   string
		code int
	}{{"+14155550111", 21610}, {"+14155550122", 21211}} {
		f := valid()
		f.Set("To", tc.to)
		if a := post(t, srv, messages(sid), sid, token, form, f.Encode()); a.status != 400 || a.err.Code != tc.code {
			t.Errorf("to %s: %d code %d, want 400 code %d", tc.to, a.status, a.err.Code, tc.code)
		}
	}
	if a := post(t, srv, messages(sid), sid, token, form, valid().Encode()); a.status != 201 {
		t.Errorf("after the scripted failures: %d", a.status)
	}
	if got := srv.Received(); got != 1 {
		t.Errorf("Received = %d, want 1", got)
	}
}

func mustRequest(t *testing.T, srv *twiliofake.Server, f url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+messages(sid), strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(sid, token)
	req.Header.Set("Content-Type", form)
	return req
}

func TestHangAndLatency(t *testing.T) {
	t.Parallel()
	srv := twiliofake.New(t, twiliofake.WithAccount(sid, token), twiliofake.WithLatency(50*time.Millisecond))
	start := time.Now()
	if a := post(t, srv, messages(sid), sid, token, form, valid().Encode()); a.status != 201 {
		t.Fatalf("status %d", a.status)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("answered in %v despite 50ms latency", took)
	}
	srv.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req := mustRequest(t, srv, valid()).WithContext(ctx)
	_, err := srv.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung request: err = %v, want deadline exceeded", err)
	}
	if srv.Received() != 1 {
		t.Errorf("Received = %d, want 1", srv.Received())
	}
}

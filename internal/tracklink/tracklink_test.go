package tracklink_test

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tracklink"
)

func newLinks(t testing.TB, key byte) *tracklink.Links {
	t.Helper()
	l, err := tracklink.New("https://herald.example.com/", bytes.Repeat([]byte{key}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	l := newLinks(t, 1)
	for _, want := range []tracklink.Target{
		{Kind: tracklink.KindClick, AppID: "app-1", DeliveryID: "0198f2b4-7c1e-7000-8000-000000000001", URL: "https://example.com/a?b=c&d=e#f"},
		{Kind: tracklink.KindOpen, AppID: "app-1", DeliveryID: "d-2"},
		{Kind: tracklink.KindUnsubscribe, AppID: "app-2", DeliveryID: "d-3"},
	} {
		tok := l.Token(want)
		if strings.ContainsAny(tok, "+/=?&#%") {
			t.Errorf("token %q is not URL-safe", tok)
		}
		got, err := l.Parse(want.Kind, tok)
		if err != nil || got != want {
			t.Errorf("Parse(Token(%+v)) = %+v, %v", want, got, err)
		}
	}
}

func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	l := newLinks(t, 1)
	click := l.Token(tracklink.Target{Kind: tracklink.KindClick, AppID: "a", DeliveryID: "d", URL: "https://example.com/x"})
	raw, _ := base64.RawURLEncoding.DecodeString(click)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for name, c := range map[string]struct {
		kind  tracklink.Kind
		token string
	}{
		"empty":               {tracklink.KindClick, ""},
		"not base64":          {tracklink.KindClick, "!!!"},
		"short":               {tracklink.KindClick, "YQ"},
		"payload tampered":    {tracklink.KindClick, flip(len(raw) - 20)},
		"mac tampered":        {tracklink.KindClick, flip(len(raw) - 1)},
		"other kind":          {tracklink.KindOpen, click},
		"other key":           {tracklink.KindClick, newLinks(t, 2).Token(tracklink.Target{Kind: tracklink.KindClick, AppID: "a", DeliveryID: "d", URL: "https://example.com/x"})},
		"javascript URL":      {tracklink.KindClick, l.Token(tracklink.Target{Kind: tracklink.KindClick, AppID: "a", DeliveryID: "d", URL: "javascript:alert(1)"})},
		"relative URL":        {tracklink.KindClick, l.Token(tracklink.Target{Kind: tracklink.KindClick, AppID: "a", DeliveryID: "d", URL: "//evil.example/"})},
		"open carrying a URL": {tracklink.KindOpen, l.Token(tracklink.Target{Kind: tracklink.KindOpen, AppID: "a", DeliveryID: "d", URL: "https://example.com"})},
		"no delivery":         {tracklink.KindOpen, l.Token(tracklink.Target{Kind: tracklink.KindOpen, AppID: "a"})},
		"too long":            {tracklink.KindClick, strings.Repeat("A", tracklink.MaxTokenLength+1)},
	} {
		if got, err := l.Parse(c.kind, c.token); herald.ErrorCode(err) != herald.CodeNotFound {
			t.Errorf("%s: Parse = %+v, %v; want a not-found error", name, got, err)
		}
	}
}

func TestClickURLLeavesUntrackableAlone(t *testing.T) {
	t.Parallel()
	l := newLinks(t, 1)
	for _, u := range []string{"mailto:a@example.com", "tel:+14155550100", "#top", "/relative", "javascript:void(0)", ""} {
		if got := l.ClickURL("a", "d", u); got != u {
			t.Errorf("ClickURL(%q) = %q, want it unchanged", u, got)
		}
	}
	got := l.ClickURL("a", "d", "https://example.com/x")
	if !strings.HasPrefix(got, "https://herald.example.com/t/c/") {
		t.Errorf("ClickURL = %q, want a link on the public URL", got)
	}
}

var clickHref = regexp.MustCompile(`href="https://herald\.example\.com/t/c/([A-Za-z0-9_-]+)"`)

func TestRewriteHTML(t *testing.T) {
	t.Parallel()
	l := newLinks(t, 1)
	doc := `<!DOCTYPE html><html><head><title>Hi &amp; bye</title></head><body>
<p class=x>Read <a href="https://example.com/a?x=1&amp;y=2" style="color:red">this</a>,
<a href='mailto:help@example.com'>mail us</a>, <a href="tel:+14155550100">call</a>, <a href="#top">top</a>,
<A HREF=" http://example.com/b ">shout</A> <area href="https://example.com/map"></p>
<!-- <a href="https://example.com/comment"> --></body></html>`
	got := l.RewriteHTML(doc, "app-1", "del-1")

	m := clickHref.FindAllStringSubmatch(got, -1)
	var targets []string
	for _, s := range m {
		tg, err := l.Parse(tracklink.KindClick, s[1])
		if err != nil {
			t.Fatalf("rewritten link %q does not parse: %v", s[1], err)
		}
		if tg.AppID != "app-1" || tg.DeliveryID != "del-1" {
			t.Errorf("link names %s/%s", tg.AppID, tg.DeliveryID)
		}
		targets = append(targets, tg.URL)
	}
	want := []string{"https://example.com/a?x=1&y=2", "http://example.com/b", "https://example.com/map"}
	if strings.Join(targets, " ") != strings.Join(want, " ") {
		t.Errorf("click targets = %q, want %q", targets, want)
	}
	for _, kept := range []string{`<a href='mailto:help@example.com'>`, `<a href="tel:+14155550100">`, `<a href="#top">`,
		`<title>Hi &amp; bye</title>`, `<p class=x>`, `<!-- <a href="https://example.com/comment"> -->`, `style="color:red"`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q was not kept as it was:\n%s", kept, got)
		}
	}
	pixel := `<img src="https://herald.example.com/t/o/`
	if i, j := strings.Index(got, pixel), strings.Index(got, "</body>"); i < 0 || i > j {
		t.Errorf("no open pixel before </body>:\n%s", got)
	}
	if frag := l.RewriteHTML(`<b>no body</b>`, "a", "d"); !strings.HasPrefix(frag, `<b>no body</b><img src=`) {
		t.Errorf("fragment: %s", frag)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	l := newLinks(t, 1)
	data := map[string]string{"url": "https://example.com/deep", "k": "v"}
	push := l.Prepare(herald.Message{AppID: "a", DeliveryID: "d", Channel: herald.ChannelPush,
		Content: herald.Content{URL: "https://example.com/tap", Data: data}}, true)
	if !strings.HasPrefix(push.Content.URL, "https://herald.example.com/t/c/") ||
		!strings.HasPrefix(push.Content.Data["url"], "https://herald.example.com/t/c/") || push.Content.Data["k"] != "v" {
		t.Errorf("push content = %+v", push.Content)
	}
	if data["url"] != "https://example.com/deep" {
		t.Error("Prepare changed the notification's own data map")
	}
	if push.UnsubscribeURL != "" {
		t.Error("a push has an unsubscribe URL")
	}

	email := herald.Message{AppID: "a", DeliveryID: "d", Channel: herald.ChannelEmail,
		Content: herald.Content{HTML: `<a href="https://example.com">x</a>`, Body: "plain"}}
	if got := l.Prepare(email, true); !strings.HasPrefix(got.UnsubscribeURL, "https://herald.example.com/u/") ||
		!strings.Contains(got.Content.HTML, "/t/c/") || got.Content.Body != "plain" {
		t.Errorf("email = %+v", got)
	}
	if got := l.Prepare(email, false); got.UnsubscribeURL != "" {
		t.Errorf("a critical email has an unsubscribe URL %q", got.UnsubscribeURL)
	}
}

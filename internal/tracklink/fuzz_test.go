package tracklink_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tracklink"
)

var kinds = []tracklink.Kind{tracklink.KindClick, tracklink.KindOpen, tracklink.KindUnsubscribe}

// FuzzParse: a token that parses was made by us: it is exactly the token
// our key makes for what it names (so no other spelling of a token, and
// no token signed with another key, is accepted), and a click's URL is
// one a redirect may lead to. Anything refused is refused as not found.
func FuzzParse(f *testing.F) {
	l := newLinks(f, 1)
	for _, tg := range []tracklink.Target{
		{Kind: tracklink.KindClick, AppID: "app-1", DeliveryID: "0198f2b4-7c1e-7000-8000-000000000001", URL: "https://example.com/a?b=c#f"},
		{Kind: tracklink.KindOpen, AppID: "app-1", DeliveryID: "d-2"},
		{Kind: tracklink.KindUnsubscribe, AppID: "app-2", DeliveryID: "d-3"},
		{Kind: tracklink.KindClick, AppID: "a", DeliveryID: "d", URL: "javascript:alert(1)"},
	} {
		tok := l.Token(tg)
		f.Add(byte(tg.Kind), tok)
		f.Add(byte(tg.Kind), tok[:len(tok)-1]+"B")
		f.Add(byte(tracklink.KindOpen), tok)
	}
	f.Add(byte('c'), "")
	f.Add(byte('o'), "!!!")
	f.Add(byte('u'), strings.Repeat("A", 40))
	f.Fuzz(func(t *testing.T, k byte, token string) {
		kind := tracklink.Kind(k)
		got, err := l.Parse(kind, token)
		if err != nil {
			if herald.ErrorCode(err) != herald.CodeNotFound {
				t.Fatalf("Parse(%q) = %v, want a not-found error", token, err)
			}
			return
		}
		if again := l.Token(got); again != token {
			t.Fatalf("Parse(%q) accepted a token we did not make: ours for %+v is %q", token, got, again)
		}
		if got.Kind != kind || got.AppID == "" || got.DeliveryID == "" {
			t.Fatalf("Parse(%q) = %+v", token, got)
		}
		if (kind == tracklink.KindClick) != (got.URL != "") || got.URL != "" && !tracklink.Trackable(got.URL) {
			t.Fatalf("Parse(%q) = %+v: URL not allowed for the kind", token, got)
		}
	})
}

// FuzzTokenRoundTrip: any target with an app, a delivery and (for a
// click) a trackable URL comes back from its token unchanged; the token
// is refused as another kind and under another key.
func FuzzTokenRoundTrip(f *testing.F) {
	l, other := newLinks(f, 1), newLinks(f, 2)
	f.Add(byte(0), "app-1", "d-1", "https://example.com/a?b=c")
	f.Add(byte(1), "app-1", "d-2", "")
	f.Add(byte(2), "a\x00b", "\xff\xfe", "")
	f.Add(byte(0), strings.Repeat("a", 200), "d", "HTTP://EXAMPLE.COM/")
	f.Fuzz(func(t *testing.T, k byte, appID, deliveryID, url string) {
		kind := kinds[int(k)%len(kinds)]
		if kind != tracklink.KindClick {
			url = ""
		}
		want := tracklink.Target{Kind: kind, AppID: appID, DeliveryID: deliveryID, URL: url}
		tok := l.Token(want)
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q is not URL-safe", tok)
		}
		valid := appID != "" && deliveryID != "" && (kind != tracklink.KindClick || tracklink.Trackable(url))
		got, err := l.Parse(kind, tok)
		if valid && len(tok) <= tracklink.MaxTokenLength && (err != nil || got != want) {
			t.Fatalf("Parse(Token(%+v)) = %+v, %v", want, got, err)
		}
		if !valid && err == nil {
			t.Fatalf("Parse(Token(%+v)) accepted an invalid target", want)
		}
		for _, k2 := range kinds {
			if k2 != kind {
				if _, err := l.Parse(k2, tok); err == nil {
					t.Fatalf("token of kind %c accepted as %c", kind, k2)
				}
			}
		}
		if _, err := other.Parse(kind, tok); err == nil {
			t.Fatalf("token accepted under another key")
		}
	})
}

var clickLink = regexp.MustCompile(`https://herald\.example\.com/t/c/([A-Za-z0-9_-]+)`)

// FuzzRewriteHTML: rewriting any document ends with the open pixel in it,
// and every click link in the result that was not in the document is
// one of ours for this delivery.
func FuzzRewriteHTML(f *testing.F) {
	l := newLinks(f, 1)
	for _, s := range []string{
		`<p><a href="https://example.com/x">x</a> <a href="mailto:a@example.com">m</a></p>`,
		`<html><body><a HREF='http://example.com/?a=1&amp;b=2' class=x>y</a></body></html>`,
		`<area href="https://example.com/map"><a href=#top>t</a><a href="javascript:alert(1)">j</a>`,
		`<a href="https://example.com/a" href="https://example.com/b">two</a>`,
		`<a href="https://example.com/&#x6a;">e</a><script>"</body>"</script>`,
		`<a href="https://ex ample.com/">`, `<a href=`, `<!-- <a href="https://example.com/"> -->`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		out := l.RewriteHTML(doc, "app-1", "d-1")
		if !strings.Contains(out, "/t/o/"+l.Token(tracklink.Target{Kind: tracklink.KindOpen, AppID: "app-1", DeliveryID: "d-1"})) {
			t.Fatalf("no open pixel in %q", out)
		}
		before := map[string]bool{}
		for _, m := range clickLink.FindAllStringSubmatch(doc, -1) {
			before[m[1]] = true
		}
		for _, m := range clickLink.FindAllStringSubmatch(out, -1) {
			if before[m[1]] {
				continue
			}
			// A token may run on into text after the link: what parses is its longest valid prefix.
			ok := false
			for n := len(m[1]); n > 0 && !ok; n-- {
				tg, err := l.Parse(tracklink.KindClick, m[1][:n])
				ok = err == nil && tg.AppID == "app-1" && tg.DeliveryID == "d-1"
			}
			if !ok {
				t.Fatalf("click link %q in the rewrite of %q is not ours", m[0], doc)
			}
		}
	})
}

package tracklink

import (
	"html"
	"io"
	"strings"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// RewriteHTML returns doc with the href of every link (<a>, <area>) that
// is an absolute http(s) URL replaced by its click link, and an open
// pixel before </body> (or at the end). Everything else, mailto:, tel:
// and #anchors included, is copied byte for byte: the tokenizer's raw
// text is written back for every token it leaves alone.
func (l *Links) RewriteHTML(doc, appID, deliveryID string) string {
	var b strings.Builder
	b.Grow(len(doc) + 512)
	z := xhtml.NewTokenizer(strings.NewReader(doc))
	pixel := `<img src="` + html.EscapeString(l.OpenURL(appID, deliveryID)) +
		`" width="1" height="1" alt="" style="display:none;border:0">`
	placed := false
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			if z.Err() != io.EOF {
				// Not reachable with a strings.Reader; keep what is left as it is.
				b.Write(z.Raw())
			}
			break
		}
		raw := z.Raw()
		switch tt {
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if hasAttr && (a == atom.A || a == atom.Area) {
				if tag, ok := l.rewriteTag(tt, name, z, appID, deliveryID); ok {
					b.WriteString(tag)
					continue
				}
			}
		case xhtml.EndTagToken:
			name, _ := z.TagName()
			if !placed && atom.Lookup(name) == atom.Body {
				b.WriteString(pixel)
				placed = true
			}
		}
		b.Write(raw)
	}
	if !placed {
		b.WriteString(pixel)
	}
	return b.String()
}

// rewriteTag renders the current tag with its href wrapped, or reports
// false when there is nothing to wrap (the raw tag is kept then).
func (l *Links) rewriteTag(tt xhtml.TokenType, name []byte, z *xhtml.Tokenizer, appID, deliveryID string) (string, bool) {
	tok := xhtml.Token{Type: tt, DataAtom: atom.Lookup(name), Data: string(name)}
	changed := false
	for {
		key, val, more := z.TagAttr()
		attr := xhtml.Attribute{Key: string(key), Val: string(val)}
		if attr.Key == "href" && !changed {
			target := strings.TrimSpace(attr.Val)
			if Trackable(target) {
				attr.Val = l.ClickURL(appID, deliveryID, target)
				changed = true
			}
		}
		tok.Attr = append(tok.Attr, attr)
		if !more {
			break
		}
	}
	if !changed {
		return "", false
	}
	return tok.String(), true
}

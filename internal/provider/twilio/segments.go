package twilio

import (
	"strings"
	"unicode/utf16"
)

// Segment sizes: a single SMS holds 140 bytes; a part of a concatenated
// one loses 6 of them to the user data header (PROVIDERS.md §4.5).
const (
	gsm7Single = 160 // septets
	gsm7Part   = 153
	ucs2Single = 70 // UTF-16 code units
	ucs2Part   = 67
)

// gsm7Basic is the GSM 03.38 basic character set; gsm7Extension the
// characters of its extension table, each sent as an escape plus one septet.
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Extension = "\f^{}\\[~]|€"
)

// septets returns how many septets r takes in GSM-7, or 0 when GSM-7
// cannot carry it.
func septets(r rune) int {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == ' ':
		return 1 // the common case, without a search
	case strings.ContainsRune(gsm7Basic, r):
		return 1
	case strings.ContainsRune(gsm7Extension, r):
		return 2
	}
	return 0
}

// ucs2Units returns how many UTF-16 code units r takes.
func ucs2Units(r rune) int {
	if n := utf16.RuneLen(r); n > 0 {
		return n
	}
	return 1 // an invalid rune is sent as U+FFFD
}

// Segments reports how many SMS segments body takes and in which encoding,
// EncodingGSM7 or EncodingUCS2, as a carrier splits it: GSM-7 when every
// character is in the GSM 03.38 tables (extension characters count two
// septets), otherwise UCS-2 counted in UTF-16 code units. A part never
// splits an escape sequence or a surrogate pair. An empty body is zero
// segments.
func Segments(body string) (n int, encoding string) {
	if body == "" {
		return 0, EncodingGSM7
	}
	width, single, part := septets, gsm7Single, gsm7Part
	encoding = EncodingGSM7
	for _, r := range body {
		if septets(r) == 0 {
			width, single, part = ucs2Units, ucs2Single, ucs2Part
			encoding = EncodingUCS2
			break
		}
	}
	total := 0
	for _, r := range body {
		total += width(r)
	}
	if total <= single {
		return 1, encoding
	}
	n, used := 1, 0
	for _, r := range body {
		w := width(r)
		if used+w > part {
			n++
			used = 0
		}
		used += w
	}
	return n, encoding
}

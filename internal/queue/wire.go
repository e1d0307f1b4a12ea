package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// Jobs and events travel as JSON, a few times per delivery each way. These
// codecs write exactly what encoding/json writes for Job and wireEvent, and
// read the same documents, without reflection: under load, encoding/json's
// reflective decoding was the largest part of an event reader's own cost.
// A document the fast reader does not expect (an escape in a string, an
// unknown or differently cased key, null, a fraction) goes to encoding/json,
// which then decides, so that both read every document alike.

// appendJob appends j's JSON, as json.Marshal(j) has it.
func appendJob(b []byte, j Job) []byte {
	b = append(b, `{"app_id":`...)
	b = appendString(b, j.AppID)
	b = append(b, `,"notification_id":`...)
	b = appendString(b, j.NotificationID)
	b = append(b, `,"delivery_id":`...)
	b = appendString(b, j.DeliveryID)
	b = append(b, `,"channel":`...)
	b = appendString(b, string(j.Channel))
	b = append(b, `,"priority":`...)
	b = appendString(b, string(j.Priority))
	return append(b, '}')
}

// decodeJobJSON reads a job, as json.Unmarshal into a Job does.
func decodeJobJSON(data []byte) (Job, error) {
	var j Job
	if decodeFlat(data, func(key, s []byte, str bool) bool {
		if !str {
			return false
		}
		switch string(key) {
		case "app_id":
			j.AppID = string(s)
		case "notification_id":
			j.NotificationID = string(s)
		case "delivery_id":
			j.DeliveryID = string(s)
		case "channel":
			j.Channel = herald.Channel(s)
		case "priority":
			j.Priority = herald.Priority(s)
		default:
			return false
		}
		return true
	}) {
		return j, nil
	}
	j = Job{}
	err := json.Unmarshal(data, &j)
	return j, err
}

// appendEvent appends w's JSON, as json.Marshal(w) has it. It fails only
// for a time json.Marshal also refuses (a year outside 0–9999).
func appendEvent(b []byte, w wireEvent) ([]byte, error) {
	if y := w.At.Year(); y < 0 || y > 9999 {
		body, err := json.Marshal(w)
		return append(b, body...), err
	}
	b = append(b, `{"app_id":`...)
	b = appendString(b, w.AppID)
	for _, f := range []struct{ name, value string }{
		{`,"notification_id":`, w.NotificationID},
		{`,"delivery_id":`, w.DeliveryID},
		{`,"channel":`, string(w.Channel)},
	} {
		if f.value != "" {
			b = append(b, f.name...)
			b = appendString(b, f.value)
		}
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(w.Status))
	if w.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, w.Reason)
	}
	if w.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(w.Attempt), 10)
	}
	if w.Provider != "" {
		b = append(b, `,"provider":`...)
		b = appendString(b, w.Provider)
	}
	if w.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, w.Detail)
	}
	b = append(b, `,"at":"`...)
	b = w.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}

// decodeEvent reads an event, as json.Unmarshal into a wireEvent does.
func decodeEvent(data []byte) (wireEvent, error) {
	var w wireEvent
	if decodeFlat(data, func(key, s []byte, str bool) bool {
		if string(key) == "attempt" {
			if str {
				return false
			}
			n, err := strconv.Atoi(string(s))
			w.Attempt = n
			return err == nil
		}
		if !str {
			return false
		}
		switch string(key) {
		case "app_id":
			w.AppID = string(s)
		case "notification_id":
			w.NotificationID = string(s)
		case "delivery_id":
			w.DeliveryID = string(s)
		case "channel":
			w.Channel = herald.Channel(s)
		case "status":
			w.Status = herald.Status(s)
		case "reason":
			w.Reason = string(s)
		case "provider":
			w.Provider = string(s)
		case "detail":
			w.Detail = string(s)
		case "at":
			return w.At.UnmarshalText(s) == nil
		default:
			return false
		}
		return true
	}) {
		return w, nil
	}
	w = wireEvent{}
	err := json.Unmarshal(data, &w)
	return w, err
}

// decodeEvents appends the events of one EVENTS message to dst: the lines
// of a batch (see eventBatchSubject), or the one event of a message written
// before batching. On error dst is returned as it was.
func decodeEvents(dst []herald.Event, batch bool, data []byte) ([]herald.Event, error) {
	if !batch {
		w, err := decodeEvent(data)
		if err != nil {
			return dst, err
		}
		return append(dst, w.event()), nil
	}
	if len(data) == 0 {
		return dst, errors.New("empty batch")
	}
	n0 := len(dst)
	for n := 1; len(data) > 0; n++ {
		if n > MaxEventBatch {
			return dst[:n0], fmt.Errorf("batch of more than %d events", MaxEventBatch)
		}
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		w, err := decodeEvent(line)
		if err != nil {
			return dst[:n0], fmt.Errorf("event %d of the batch: %w", n, err)
		}
		dst = append(dst, w.event())
	}
	return dst, nil
}

// decodeFlat reads a JSON object whose members are strings without escapes
// or integers, calling set with each key and value (str tells which;
// integers only where set accepts them), and reports whether the document
// was such an object and set accepted every member.
func decodeFlat(data []byte, set func(key, value []byte, str bool) bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		var value []byte
		str := i < len(data) && data[i] == '"'
		if str {
			if value, next, ok = plainString(data, i); !ok {
				return false
			}
		} else if value, next, ok = plainInt(data, i); !ok {
			return false
		}
		if !set(key, value, str) {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string starting at data[i] when it has no escape,
// no control character and valid UTF-8 (encoding/json would replace an
// invalid sequence), returning its contents and the index after it.
func plainString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			s = data[i+1 : j]
			return s, j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads the JSON integer starting at data[i]: -?(0|[1-9][0-9]*),
// not followed by a fraction or an exponent.
func plainInt(data []byte, i int) (s []byte, next int, ok bool) {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	start := j
	for j < len(data) && data[j] >= '0' && data[j] <= '9' {
		j++
	}
	if j == start || (data[start] == '0' && j > start+1) {
		return nil, 0, false
	}
	if j < len(data) && (data[j] == '.' || data[j] == 'e' || data[j] == 'E') {
		return nil, 0, false
	}
	return data[i:j], j, true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as encoding/json writes a string: quoted, with
// ", \ and control characters escaped, <, > and & as \u escapes (its HTML
// safety), invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

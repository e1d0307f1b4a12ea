package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// The codecs must agree with encoding/json byte for byte when writing, and
// read every document as it does, errors included.

var awkward = []string{"", "a", "ada@example.com", `say "hi"`, `back\slash`, "tab\tnew\nline\r", "\x00\x01\x1f",
	"<b>&amp;</b>", "ünïcødé ✓ 🚀", "\u2028\u2029", "bad \xff\xfe utf8", "/slash/", "\u007f", strings.Repeat("x", 300)}

func pick(r *rand.Rand) string { return awkward[r.IntN(len(awkward))] }

func TestAppendJobIsJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		j := Job{AppID: pick(r), NotificationID: pick(r), DeliveryID: pick(r), Channel: herald.Channel(pick(r)),
			Priority: herald.Priority(pick(r)), MsgID: pick(r)}
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJob(nil, j); !bytes.Equal(got, want) {
			t.Fatalf("appendJob(%+v)\n got %s\nwant %s", j, got, want)
		}
	}
}

func TestAppendEventIsJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	for i := range 3000 {
		w := wireEvent{AppID: pick(r), NotificationID: pick(r), DeliveryID: pick(r), Channel: herald.Channel(pick(r)),
			Status: herald.Status(pick(r)), Reason: pick(r), Attempt: []int{0, 1, 7, -3, 1 << 40}[r.IntN(5)],
			Provider: pick(r), Detail: pick(r),
			At: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)*int64(r.IntN(2))).In(zones[r.IntN(len(zones))])}
		switch i {
		case 0:
			w.At = time.Time{}
		case 1:
			w.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // json.Marshal refuses it
		}
		want, wantErr := json.Marshal(w)
		got, err := appendEvent(nil, w)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("appendEvent(%+v): error %v, json.Marshal's %v", w, err, wantErr)
		}
		if wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendEvent(%+v)\n got %s\nwant %s", w, got, want)
		}
	}
}

// documents are what the readers may meet: ours, and others' spelling of them.
var documents = []string{
	`{"app_id":"a","notification_id":"n","delivery_id":"d","channel":"email","priority":"high"}`,
	` { "priority" : "normal" ,"channel":"sms", "delivery_id":"d1" , "app_id" : "a" } `,
	`{}`, ` {} `, `{"app_id":"a","app_id":"b"}`, `{"APP_ID":"upper"}`, `{"app_id":null}`, `{"app_id":"esc\"aped"}`,
	`{"app_id":"\u00e9"}`, `{"unknown":"x","app_id":"a"}`, `{"unknown":{"nested":[1,2]}}`, `{"app_id":1}`,
	`{"app_id":"a",}`, `{"app_id":"a"} trailing`, `{"app_id":"a"`, `[]`, `null`, ``, `{"app_id":"a" "x":"y"}`,
	"{\"app_id\":\"ctl\x01\"}", "{\"app_id\":\"bad \xff\"}",
	`{"app_id":"a","status":"sent","attempt":3,"at":"2026-11-28T05:07:40.123456Z"}`,
	`{"app_id":"a","status":"sent","attempt":-2,"at":"2026-11-28T05:07:40+05:30"}`,
	`{"attempt":1.0}`, `{"attempt":1e3}`, `{"attempt":01}`, `{"attempt":-}`, `{"attempt":"3"}`, `{"attempt":99999999999999999999}`,
	`{"at":"yesterday"}`, `{"at":"2026-11-28T05:07:40Z","at":"2026-11-29T05:07:40Z"}`, `{"at":5}`,
	`{"reason":"r","provider":"p","detail":"<d>","notification_id":"n","delivery_id":"d","channel":"push"}`,
}

func TestDecodeJobIsJSONUnmarshal(t *testing.T) {
	for _, doc := range documents {
		var want Job
		wantErr := json.Unmarshal([]byte(doc), &want)
		got, err := decodeJobJSON([]byte(doc))
		if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("decodeJobJSON(%q) = %+v, %v; json.Unmarshal: %+v, %v", doc, got, err, want, wantErr)
		}
	}
}

func TestDecodeEventIsJSONUnmarshal(t *testing.T) {
	docs := documents
	r := rand.New(rand.NewPCG(5, 6))
	for range 500 { // and the writer's own output
		w := wireEvent{AppID: pick(r), DeliveryID: pick(r), Status: herald.Status(pick(r)), Detail: pick(r),
			Attempt: r.IntN(3), At: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC()}
		b, err := appendEvent(nil, w)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	for _, doc := range docs {
		var want wireEvent
		wantErr := json.Unmarshal([]byte(doc), &want)
		got, err := decodeEvent([]byte(doc))
		if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("decodeEvent(%q) = %+v, %v; json.Unmarshal: %+v, %v", doc, got, err, want, wantErr)
		}
	}
}

func BenchmarkEventCodec(b *testing.B) {
	w := wireEvent{AppID: "0190b7a4-0000-7000-8000-000000000001", NotificationID: "0190b7a4-0000-7000-8000-000000000002",
		DeliveryID: "0190b7a4-0000-8000-8000-000000000003", Channel: herald.ChannelPush, Status: herald.StatusSent,
		Attempt: 1, Provider: "apns", At: time.Now().UTC()}
	body, _ := json.Marshal(w)
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"encode/json", func() error { _, err := json.Marshal(w); return err }},
		{"encode/fast", func() error { _, err := appendEvent(make([]byte, 0, 256), w); return err }},
		{"decode/json", func() error { var x wireEvent; return json.Unmarshal(body, &x) }},
		{"decode/fast", func() error { _, err := decodeEvent(body); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.f(); err != nil {
					b.Fatal(fmt.Errorf("%s: %w", c.name, err))
				}
			}
		})
	}
}

// Events of any content, written one a line, read back as written: the
// JSON of an event never holds a raw newline.
func TestEventBatchLines(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var want []herald.Event
	var body []byte
	for i := range MaxEventBatch {
		w := wireEvent{AppID: pick(r), NotificationID: pick(r), DeliveryID: pick(r), Channel: herald.Channel(pick(r)),
			Status: herald.Status(pick(r)), Reason: pick(r), Attempt: r.IntN(3), Provider: pick(r), Detail: pick(r),
			At: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC()}
		if i > 0 {
			body = append(body, '\n')
		}
		var err error
		if body, err = appendEvent(body, w); err != nil {
			t.Fatal(err)
		}
		// What encoding/json reads back (invalid UTF-8 becomes U+FFFD).
		var back wireEvent
		if err := json.Unmarshal(body[bytes.LastIndexByte(body, '\n')+1:], &back); err != nil {
			t.Fatal(err)
		}
		want = append(want, back.event())
	}
	prefix := []herald.Event{{AppID: "kept"}}
	got, err := decodeEvents(prefix, true, body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[1:], want) || got[0].AppID != "kept" {
		t.Errorf("decodeEvents read %d events, not the %d written after the one kept", len(got), len(want))
	}
	if _, err := decodeEvents(nil, false, body); err == nil {
		t.Error("decodeEvents read lines from a message of one event")
	}
	for _, bad := range []string{string(body) + "\n" + string(body), strings.Repeat(`{"status":"sent"}`+"\n", 3) + "{"} {
		if got, err := decodeEvents(prefix, true, []byte(bad)); err == nil || len(got) != 1 {
			t.Errorf("decodeEvents of %.40q… = %d events, %v; want only the one kept and an error", bad, len(got), err)
		}
	}
}

package wssec

import (
	"github.com/avouch/avouch/internal/safexml"
	"testing"
	"time"
)

func TestTimesInEveryFormatRealClientsSend(t *testing.T) {
	want := time.Date(2026, 11, 22, 16, 22, 20, 0, time.UTC)
	for _, s := range []string{"2026-11-22T16:22:20Z", "2026-11-22T16:22:20+00:00", "2026-11-22T16:22:20.000Z",
		"2026-11-22T17:22:20+01:00", " 2026-11-22T16:22:20Z\n"} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"2026-11-22T16:22:20", "22/11/2026", ""} {
		if _, err := ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted a time without a zone", s)
		}
	}
}

func TestFreshnessRules(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	p := &Processor{Skew: 5 * time.Minute, MaxAge: 5 * time.Minute}
	cases := []struct {
		name string
		ts   Timestamp
		ok   bool
	}{
		{"a fresh timestamp passes", Timestamp{Created: now.Add(-time.Minute), Expires: now.Add(4 * time.Minute)}, true},
		{"Created within the skew in the future passes", Timestamp{Created: now.Add(4 * time.Minute)}, true},
		{"Created beyond the skew in the future fails", Timestamp{Created: now.Add(6 * time.Minute)}, false},
		{"Expires within the skew in the past passes", Timestamp{Created: now.Add(-9 * time.Minute), Expires: now.Add(-4 * time.Minute)}, true},
		{"Expires beyond the skew in the past fails", Timestamp{Created: now.Add(-20 * time.Minute), Expires: now.Add(-6 * time.Minute)}, false},
		{"a Created without Expires older than max age plus skew fails", Timestamp{Created: now.Add(-11 * time.Minute)}, false},
		{"a Created without Expires within max age plus skew passes", Timestamp{Created: now.Add(-9 * time.Minute)}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.CheckTimestamp(&c.ts, now)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && err.(*Error).Code != FaultMessageExpired {
				t.Fatalf("code %s", err.(*Error).Code)
			}
		})
	}
}

// A comment (or processing instruction) inside a UsernameToken field must not
// cut the value short: the whole text comes through, as a parser must read it.
func TestUsernameTokenFieldsKeepTheirWholeText(t *testing.T) {
	doc, err := safexml.Parse([]byte(`<wsse:Security xmlns:wsse="`+NSWSSE+`" xmlns:wsu="`+NSWSU+`"><wsse:UsernameToken>`+
		`<wsse:Username>ad<!-- x -->min<?pi?>@corp</wsse:Username><wsse:Password>Se<!---->cret</wsse:Password>`+
		`</wsse:UsernameToken><wsu:Timestamp><wsu:Created>2026-11-22T<!---->16:22:20Z</wsu:Created></wsu:Timestamp></wsse:Security>`), safexml.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	if h.UsernameToken.Username != "admin@corp" || h.UsernameToken.Password != "Secret" {
		t.Fatalf("got %q / %q", h.UsernameToken.Username, h.UsernameToken.Password)
	}
	if want := time.Date(2026, 11, 22, 16, 22, 20, 0, time.UTC); !h.Timestamp.Created.Equal(want) {
		t.Fatalf("Created %v", h.Timestamp.Created)
	}
}

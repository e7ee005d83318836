package sts

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/saml"
)

// The stored token record is read back with json.Unmarshal, and rows
// written by earlier versions came from json.Marshal: the hand-written
// encoder must produce the same bytes for every record, escapes and errors
// included.
func TestRecordMarshalMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 22, 47, 4, 649_000_000, time.UTC)
	cases := map[string]tokenRecord{
		"empty": {},
		"bench": {Subject: "bench", AuthnAt: at, AuthnCtx: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
			Attributes: []saml.Attribute{
				{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", Values: []string{"e@x.org"}},
				{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/role", Values: []string{"admin", "everyone"}},
			}},
		"every field": {Subject: "alice", Domain: "EXAMPLE", Audiences: []string{"urn:a", "urn:b"}, AuthnAt: at,
			AuthnCtx: "x", DefaultNS: true, Passive: true, KeyInfo: []byte{0, 1, 2, 0xfe, 0xff},
			Delegate: "svc", DelegatedAt: at.Add(time.Second)},
		"nil and empty values": {Subject: "s", Attributes: []saml.Attribute{{Name: "nil"}, {Name: "empty", Values: []string{}}}},
		"escapes": {Subject: "a\"b\\c<d>e&f\x00\x1f\b\f\n\r\t\x7f", Domain: "Jörg ☃ \u2028\u2029",
			Delegate: "bad utf-8 \xff\xfe", Audiences: []string{""}},
		"zone":       {Subject: "z", AuthnAt: at.In(time.FixedZone("", 5*3600+30*60))},
		"nanosecond": {Subject: "n", AuthnAt: at.Add(123)},
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) { compareRecord(t, &rec) })
	}

	// Times RFC 3339 cannot hold fail both encoders.
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), at.In(time.FixedZone("", 25*3600))} {
		rec := tokenRecord{AuthnAt: tm}
		if _, err := rec.marshal(); err == nil {
			t.Errorf("%v: marshal succeeded; encoding/json fails", tm)
		}
		rec = tokenRecord{DelegatedAt: tm}
		if _, err := rec.marshal(); err == nil {
			t.Errorf("%v as DelegatedAt: marshal succeeded; encoding/json fails", tm)
		}
	}

	// Random records over an alphabet of the characters that matter.
	alphabet := []rune("aZ09 :/@.-_\"\\<>&\x00\x01\n\t\x7féü☃\u2028\U0001F600")
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		if r.IntN(10) == 0 {
			sb.WriteByte(0xc3) // a truncated UTF-8 sequence
		}
		return sb.String()
	}
	strs := func() []string {
		n := r.IntN(4) - 1
		if n < 0 {
			return nil
		}
		ss := make([]string, n)
		for i := range ss {
			ss[i] = str()
		}
		return ss
	}
	for range 2000 {
		rec := tokenRecord{Subject: str(), Domain: str(), Audiences: strs(), AuthnCtx: str(), Delegate: str(),
			AuthnAt: at.Add(time.Duration(r.Int64N(1e15))), DefaultNS: r.IntN(2) == 0, Passive: r.IntN(2) == 0}
		for range r.IntN(4) {
			rec.Attributes = append(rec.Attributes, saml.Attribute{Name: str(), Values: strs()})
		}
		if r.IntN(2) == 0 {
			rec.KeyInfo = []byte(str())
		}
		compareRecord(t, &rec)
		if t.Failed() {
			return
		}
	}
}

func compareRecord(t *testing.T, rec *tokenRecord) {
	t.Helper()
	want, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rec.marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("marshal differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

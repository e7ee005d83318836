package registry

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/avouch/avouch/internal/storage/sqlite"
)

func newRegistry(t *testing.T) *Registry {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st)
}

func TestAppliesToMatchesExactlyOrByExplicitPatternOnly(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	for _, sp := range []*ServiceProvider{
		{Name: "app", WSTrust: &WSTrust{Endpoints: []string{"https://app.example/", "urn:app"}}},
		{Name: "wild", WSTrust: &WSTrust{Patterns: []string{`https://[a-z]+\.wild\.example/.*`}}},
		{Name: "both", WSTrust: &WSTrust{Endpoints: []string{"https://x.wild.example/exact"}}},
	} {
		if err := r.Put(ctx, sp); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		appliesTo string
		want      string
	}{
		{"https://app.example/", "app"},
		{"urn:app", "app"},
		{"https://app.example", ""},              // no normalisation: exact means exact
		{"https://app.example/sub", ""},          // never a prefix match
		{"HTTPS://APP.EXAMPLE/", ""},             // case matters
		{"https://a.wild.example/x", "wild"},     // pattern
		{"https://a.wild.example.evil/x", ""},    // the pattern is anchored
		{"xhttps://a.wild.example/x", ""},        // anchored at the start too
		{"https://x.wild.example/exact", "both"}, // exact beats pattern
	}
	for _, c := range cases {
		t.Run(c.appliesTo+" → "+c.want, func(t *testing.T) {
			sp, err := r.MatchAppliesTo(c.appliesTo)
			if c.want == "" {
				if !errors.Is(err, ErrNoMatch) {
					t.Fatalf("matched %v (%v)", sp, err)
				}
				return
			}
			if err != nil || sp.Name != c.want {
				t.Fatalf("got %v, %v", sp, err)
			}
		})
	}
}

func TestInvalidServiceProvidersNameTheField(t *testing.T) {
	cases := []struct {
		name  string
		sp    ServiceProvider
		field string
	}{
		{"a bad name", ServiceProvider{Name: "../x", WSTrust: &WSTrust{Endpoints: []string{"urn:a"}}}, "name"},
		{"no endpoints", ServiceProvider{Name: "a", WSTrust: &WSTrust{}}, "wstrust.endpoints"},
		{"a blank endpoint", ServiceProvider{Name: "a", WSTrust: &WSTrust{Endpoints: []string{" "}}}, "wstrust.endpoints[0]"},
		{"a bad pattern", ServiceProvider{Name: "a", WSTrust: &WSTrust{Patterns: []string{"("}}}, "wstrust.patterns[0]"},
		{"encryption without a certificate", ServiceProvider{Name: "a", WSTrust: &WSTrust{Endpoints: []string{"urn:a"}, Token: Token{Encrypt: true}}}, "wstrust.token.cert_alias"},
		{"an unknown data encryption", ServiceProvider{Name: "a", WSTrust: &WSTrust{Endpoints: []string{"urn:a"}, Token: Token{DataEncryption: "des"}}}, "wstrust.token.data_encryption"},
		{"RSA 1.5 key transport", ServiceProvider{Name: "a", WSTrust: &WSTrust{Endpoints: []string{"urn:a"}, Token: Token{KeyTransport: "rsa-1_5"}}}, "wstrust.token.key_transport"},
		{"an unknown key type", ServiceProvider{Name: "a", WSTrust: &WSTrust{Endpoints: []string{"urn:a"}, Token: Token{AllowedKeyTypes: []string{"Magic"}}}}, "wstrust.token.allowed_key_types"},
		{"a reply URL with user info", ServiceProvider{Name: "a", Passive: &Passive{Realm: "urn:a", ReplyURLs: []string{"https://rp@evil.example/"}}}, "passive.reply_urls[0]"},
		{"a javascript reply URL", ServiceProvider{Name: "a", Passive: &Passive{Realm: "urn:a", ReplyURLs: []string{"javascript:alert(1)"}}}, "passive.reply_urls[0]"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			var fe *FieldError
			if err := c.sp.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err %v, want field %s", err, c.field)
			}
		})
	}
}

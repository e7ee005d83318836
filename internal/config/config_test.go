package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedenceIsFlagsThenEnvThenFileThenDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "avouch.yaml")
	if err := os.WriteFile(file, []byte("issuer: from-file\ntoken_lifetime: 7m\nclock_skew: 1m\nallowed_roles: [a, b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AVOUCH_CONFIG": file, "AVOUCH_TOKEN_LIFETIME": "9m", "AVOUCH_CLOCK_SKEW": "2m"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg, err := Load(fs, []string{"--clock-skew", "3m", "--plain-http"}, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"a flag beats the environment and the file", cfg.ClockSkew, Duration(3 * time.Minute)},
		{"the environment beats the file", cfg.TokenLifetime, Duration(9 * time.Minute)},
		{"the file beats the defaults", cfg.Issuer, "from-file"},
		{"a list comes from the file", strings.Join(cfg.AllowedRoles, ","), "a,b"},
		{"a boolean flag without value is true", cfg.PlainHTTP, true},
		{"an unset setting keeps its default", cfg.Listen, ":9443"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestBadConfigurationIsRefusedClearly(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"an unknown YAML key", []string{"--config", write("isuer: typo\n")}, nil, "isuer"},
		{"a bad duration in YAML", []string{"--config", write("token_lifetime: forever\n")}, nil, "not a duration"},
		{"a bad duration in the environment", nil, map[string]string{"AVOUCH_CLOCK_SKEW": "soon"}, "AVOUCH_CLOCK_SKEW"},
		{"an unknown token type", []string{"--default-token-type", "jwt"}, nil, "saml2.0 or saml1.1"},
		{"an unknown signature algorithm", []string{"--signature-algorithm", "hmac-sha1"}, nil, "signature_algorithm"},
		{"a lifetime above the maximum", []string{"--token-lifetime", "9h"}, nil, "max_token_lifetime"},
		{"no allowed roles", []string{"--allowed-roles", ""}, nil, "allowed_roles"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := Load(fs, c.args, envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want mention of %q", err, c.want)
			}
		})
	}
}

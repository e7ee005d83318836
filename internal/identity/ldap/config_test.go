package ldap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfigurationsClearly(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "ldap://127.0.0.1:1"
	cases := []struct {
		name      string
		configure func(*Config)
		want      string // substring of the error
	}{
		{"StartTLS on an ldaps URL is refused", func(c *Config) { c.URL, c.StartTLS = "ldaps://dc.example.test", true },
			"StartTLS is for ldap:// URLs"},
		{"a CA file without TLS is refused", func(c *Config) { c.CAFile = notPEM },
			"CAFile is set but the connection is not TLS"},
		{"InsecureSkipVerify without TLS is refused", func(c *Config) { c.InsecureSkipVerify = true },
			"InsecureSkipVerify is set but the connection is not TLS"},
		{"a CA file that does not exist is refused", func(c *Config) { c.StartTLS, c.CAFile = true, "/nonexistent/ca.pem" },
			"CAFile: open /nonexistent/ca.pem"},
		{"a CA file without certificates is refused", func(c *Config) { c.URL, c.CAFile = "ldaps://dc.example.test", notPEM },
			"holds no PEM certificate"},
		{"a URL with another scheme is refused", func(c *Config) { c.URL = "http://dc.example.test" },
			"scheme must be ldap or ldaps"},
		{"a URL with a DN is refused", func(c *Config) { c.URL = "ldap://dc.example.test/dc=example,dc=test" },
			"must be just scheme://host[:port]"},
		{"an empty URL is refused", func(c *Config) { c.URL = "" }, "URL"},
		{"an empty domain is refused", func(c *Config) { c.Domain = "" }, "Domain is empty"},
		{"the PRIMARY domain is refused", func(c *Config) { c.Domain = "primary" }, "embedded store"},
		{"a domain with a slash is refused", func(c *Config) { c.Domain = "A/B" }, "must not contain"},
		{"a bind DN without password is refused", func(c *Config) { c.BindPassword = "" },
			"BindDN and BindPassword must be set together"},
		{"a user filter without {user} is refused", func(c *Config) { c.UserFilter = "(uid=alice)" },
			"must contain {user}"},
		{"an unbalanced user filter is refused", func(c *Config) { c.UserFilter = "(&(uid={user})" }, "UserFilter"},
		{"a missing user search base is refused", func(c *Config) { c.UserSearchBase = "" }, "UserSearchBase"},
		{"a DN pattern without {user} is refused", func(c *Config) { c.UserDNPattern = "uid=x,dc=example,dc=test" },
			"UserDNPattern"},
		{"a bad user name attribute is refused", func(c *Config) { c.UserNameAttribute = "u id" }, "UserNameAttribute"},
		{"a group filter without placeholders is refused", func(c *Config) { c.GroupFilter = "(objectClass=groupOfNames)" },
			"must contain {dn} or {user}"},
		{"a group filter without a search base is refused", func(c *Config) { c.GroupSearchBase = "" }, "GroupSearchBase"},
		{"a role mapping to an empty role is refused", func(c *Config) { c.RoleMapping = map[string]string{"staff": ""} },
			"RoleMapping"},
		{"a claim mapping from a bad attribute is refused", func(c *Config) { c.ClaimMapping = map[string]string{"ma il": "x"} },
			"ClaimMapping"},
		{"a negative timeout is refused", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"a negative pool size is refused", func(c *Config) { c.PoolSize = -1 }, "PoolSize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(url)
			tc.configure(&cfg)
			s, err := New(cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New accepted the configuration; want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "invalid configuration") {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	t.Run("every problem is reported at once", func(t *testing.T) {
		cfg := testConfig(url)
		cfg.Domain, cfg.UserFilter, cfg.Timeout = "", "(uid=x)", -1
		_, err := New(cfg)
		for _, want := range []string{"Domain", "UserFilter", "Timeout"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %s", err, want)
			}
		}
	})
}

func TestNewAcceptsAMinimalConfigurationWithoutTheServer(t *testing.T) {
	s, err := New(Config{
		Domain:            "corp",
		URL:               closedPortURL(t), // New must not need the server
		UserSearchBase:    "ou=people,dc=example,dc=test",
		UserFilter:        "(&(objectClass=inetOrgPerson)(uid={user}))",
		UserNameAttribute: "uid",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ name, got, want string }{
		{"Domain", s.Domain(), "CORP"},
		{"Timeout", s.cfg.Timeout.String(), "5s"},
		{"UserListFilter", s.cfg.UserListFilter, "(&(objectClass=inetOrgPerson)(uid=*))"},
		{"GroupNameAttribute", s.cfg.GroupNameAttribute, "cn"},
		{"PoolSize", fmt.Sprint(s.cfg.PoolSize), "4"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

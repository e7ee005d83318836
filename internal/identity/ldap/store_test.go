package ldap

import (
	"slices"
	"strings"
	"testing"
)

var aliceClaims = map[string]string{
	claimEmail:     "alice@example.test",
	claimGivenName: "Alice",
	claimSurname:   "Liddell",
}

func TestStore(t *testing.T) {
	srv := startServer(t, false)
	s := newStore(t, testConfig(srv.URL))

	t.Run("the domain is upper case", func(t *testing.T) {
		if s.Domain() != "CORP" {
			t.Fatalf("Domain() = %q", s.Domain())
		}
	})

	accepted := []struct {
		name, login, password string
		wantName              string
		wantRoles             []string
		wantClaims            map[string]string
	}{
		{"alice authenticates with roles mapped from her groups and claims from her attributes",
			"alice", "Alice#123", "alice", []string{"admin", "staff"}, aliceClaims},
		{"a login name in other case authenticates as the directory spells it",
			"ALICE", "Alice#123", "alice", []string{"admin", "staff"}, aliceClaims},
		{"a login name with surrounding spaces authenticates as the directory spells it (LDAP ignores them)",
			" alice ", "Alice#123", "alice", []string{"admin", "staff"}, aliceClaims},
		{"bob authenticates with only the staff role and no claims for attributes he lacks",
			"bob", "Bob#1234", "bob", []string{"staff"}, map[string]string{claimEmail: "bob@example.test", claimGivenName: "Bob", claimSurname: "Baker"}},
		{"a user whose name holds a filter metacharacter authenticates",
			"o*brien", "Obrien#1", "o*brien", []string{"staff"}, map[string]string{claimSurname: "O'Brien"}},
		{"a user whose DN needs escaping authenticates and gets the groups that list that DN",
			"lee, ann (temp)", "Lee#12345", "lee, ann (temp)", []string{"admin"}, map[string]string{claimEmail: "ann.lee@example.test", claimSurname: "Lee"}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.Authenticate(ctxT(t), tc.login, tc.password)
			wantPrincipal(t, p, err, tc.wantName, tc.wantRoles, tc.wantClaims)
		})
	}

	refused := []struct{ name, login, password string }{
		{"a wrong password is refused", "alice", "alice#123"},
		{"another user's password is refused", "alice", "Bob#1234"},
		{"an unknown user is refused", "nobody", "Alice#123"},
		{"a user outside the user search base is refused", "mallory", "Mallory#1"},
		{"the service account cannot log in as a user", "sts-reader", "Reader#123"},
		{"a lone * does not match alice", "*", "Alice#123"},
		{"a lone * does not match bob", "*", "Bob#1234"},
		{"a prefix with * does not match alice", "al*", "Alice#123"},
		{"a prefix with * does not match o*brien", "o*", "Obrien#1"},
		{"a filter break-out with an OR does not match", "alice)(|(uid=*", "Alice#123"},
		{"a filter break-out closing the AND does not match", "alice)(uid=*", "Alice#123"},
		{"a filter break-out to objectClass does not match", "*)(objectClass=*", "Bob#1234"},
		{"a lone backslash does not match", `\`, "Alice#123"},
		{"an escape sequence written by the user does not match", `\61lice`, "Alice#123"},
		{"a truncated DN-escaped name does not match", "lee, ann (temp", "Lee#12345"},
		{"a name with a NUL byte is refused", "alice\x00", "Alice#123"},
		{"a name that is not UTF-8 is refused", "alice\xff", "Alice#123"},
		{"an overlong name is refused", strings.Repeat("a", 300), "Alice#123"},
		{"an empty name is refused", "", "Alice#123"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.Authenticate(ctxT(t), tc.login, tc.password)
			wantRefused(t, p, err)
		})
	}

	t.Run("an empty password is refused without a bind", func(t *testing.T) {
		before := s.userBinds.Load()
		p, err := s.Authenticate(ctxT(t), "alice", "")
		wantRefused(t, p, err)
		if n := s.userBinds.Load() - before; n != 0 {
			t.Fatalf("%d binds sent for an empty password", n)
		}
	})

	t.Run("Lookup returns the principal without a password", func(t *testing.T) {
		p, err := s.Lookup(ctxT(t), "alice")
		wantPrincipal(t, p, err, "alice", []string{"admin", "staff"}, aliceClaims)
	})
	for _, login := range []string{"nobody", "*", "alice)(uid=*", "mallory", ""} {
		t.Run("Lookup refuses "+strings.TrimSpace(login+" (no such user)"), func(t *testing.T) {
			p, err := s.Lookup(ctxT(t), login)
			wantRefused(t, p, err)
		})
	}

	t.Run("ListUsers pages past the server's size limit and returns sorted names", func(t *testing.T) {
		got, err := s.ListUsers(ctxT(t), 100)
		want := []string{"alice", "bob", "lee, ann (temp)", "o*brien"}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("ListUsers(100) = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("ListUsers stops at the limit", func(t *testing.T) {
		got, err := s.ListUsers(ctxT(t), 2)
		if err != nil || len(got) != 2 {
			t.Fatalf("ListUsers(2) = %q, %v; want 2 names", got, err)
		}
	})
	t.Run("ListUsers rejects a limit that is not positive", func(t *testing.T) {
		if _, err := s.ListUsers(ctxT(t), 0); err == nil {
			t.Fatal("ListUsers(0) succeeded")
		}
	})
}

func TestStoreVariants(t *testing.T) {
	srv := startServer(t, false)

	t.Run("with a DN pattern users are read at their escaped DN", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.UserDNPattern = "uid={user},ou=people,dc=example,dc=test"
		s := newStore(t, cfg)
		p, err := s.Authenticate(ctxT(t), "lee, ann (temp)", "Lee#12345")
		wantPrincipal(t, p, err, "lee, ann (temp)", []string{"admin"}, nil)
		p, err = s.Authenticate(ctxT(t), "alice", "Alice#123")
		wantPrincipal(t, p, err, "alice", []string{"admin", "staff"}, aliceClaims)
		for _, login := range []string{"alice,ou=people", "alice+cn=Alice Liddell", "*", "lee", "mallory,ou=contractors"} {
			p, err := s.Authenticate(ctxT(t), login, "Alice#123")
			wantRefused(t, p, err)
		}
	})
	t.Run("without MapUnlistedGroups only mapped groups become roles", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.MapUnlistedGroups = false
		p, err := newStore(t, cfg).Authenticate(ctxT(t), "alice", "Alice#123")
		wantPrincipal(t, p, err, "alice", []string{"admin"}, aliceClaims)
	})
	t.Run("role mapping ignores the case of group names", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.RoleMapping = map[string]string{"STS-Admins": "admin", "STAFF": "user"}
		p, err := newStore(t, cfg).Authenticate(ctxT(t), "alice", "Alice#123")
		wantPrincipal(t, p, err, "alice", []string{"admin", "user"}, aliceClaims)
	})
	t.Run("without a group search users have no roles", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.GroupSearchBase, cfg.GroupFilter = "", ""
		p, err := newStore(t, cfg).Authenticate(ctxT(t), "bob", "Bob#1234")
		wantPrincipal(t, p, err, "bob", nil, nil)
	})
	t.Run("a rejected service account makes the store unavailable, not the user wrong", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.BindPassword = "wrong"
		_, err := newStore(t, cfg).Authenticate(ctxT(t), "alice", "Alice#123")
		wantUnavailable(t, err)
		if !strings.Contains(err.Error(), "service account") {
			t.Errorf("error %q does not name the service account", err)
		}
	})
	t.Run("a search base that does not exist makes the store unavailable", func(t *testing.T) {
		cfg := testConfig(srv.URL)
		cfg.UserSearchBase = "ou=nowhere,dc=example,dc=test"
		_, err := newStore(t, cfg).Authenticate(ctxT(t), "alice", "Alice#123")
		wantUnavailable(t, err)
	})
	t.Run("an unreachable server does not see an empty password either", func(t *testing.T) {
		p, err := newStore(t, testConfig(closedPortURL(t))).Authenticate(ctxT(t), "alice", "")
		wantRefused(t, p, err)
	})
	t.Run("a closed store fails as unavailable", func(t *testing.T) {
		s := newStore(t, testConfig(srv.URL))
		_ = s.Close()
		_, err := s.Authenticate(ctxT(t), "alice", "Alice#123")
		wantUnavailable(t, err)
	})
}

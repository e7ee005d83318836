// Package ldap tests avouch with a real LDAP directory: a throw-away slapd
// serving the users of internal/identity/ldap/testdata/users.ldif, and the
// real avouch binary configured through `avouch userstore add ldap`.
package ldap

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/avouchtest"
	"github.com/avouch/avouch/internal/testutil/slapdtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "avouch-ldap")
	if err != nil {
		panic(err)
	}
	if binary, err = avouchtest.Build(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	return avouchtest.CLI(t, binary, nil, args...)
}

func serve(t *testing.T, dataDir string) string {
	t.Helper()
	return avouchtest.Start(t, binary, dataDir, nil).STS()
}

const (
	claimEmail = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimGiven = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimRole  = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
)

func attr(t *testing.T, tok []byte, name string) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(tok); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, a := range doc.FindElements("//Attribute") {
		if a.SelectAttrValue("Name", "") == name {
			for _, v := range a.SelectElements("AttributeValue") {
				vals = append(vals, v.Text())
			}
		}
	}
	return strings.Join(vals, ",")
}

func TestUsersFromARealLDAPDirectory(t *testing.T) {
	dir := slapdtest.New(t, slapdtest.Options{LDIF: []string{"../../internal/identity/ldap/testdata/users.ldif"}})
	data := t.TempDir()
	run(t, "userstore", "add", "ldap", "--data-dir", data, "--domain", "CORP", "--url", dir.URL,
		"--bind-dn", "cn=sts-reader,ou=services,dc=example,dc=test", "--bind-password", "Reader#123",
		"--user-base", "ou=people,dc=example,dc=test", "--group-base", "ou=groups,dc=example,dc=test",
		"--role-map", "sts-admins=admin", "--role-map", "staff=staff",
		"--claim-map", "mail="+claimEmail, "--claim-map", "givenName="+claimGiven, "--timeout", "2s")
	if out := run(t, "user", "list", "--data-dir", data, "--domain", "CORP"); !strings.Contains(out, "CORP/alice") || !strings.Contains(out, "CORP/bob") {
		t.Fatalf("user list --domain CORP: %s", out)
	}
	url := serve(t, data)
	ctx := context.Background()
	issue := func(user, pw string) ([]byte, error) {
		_, _, tok, err := client.Issue(ctx, http.DefaultClient, &client.Options{URL: url, User: user, Password: pw,
			AppliesTo: "urn:rp:ldap", Claims: []string{claimEmail, claimGiven, claimRole}})
		return tok, err
	}
	for _, login := range []string{"CORP/alice", "alice", "corp/alice"} {
		t.Run(login+" gets a token with claims and roles mapped from LDAP", func(t *testing.T) {
			tok, err := issue(login, "Alice#123")
			if err != nil {
				t.Fatal(err)
			}
			if got := attr(t, tok, claimEmail); got != "alice@example.test" {
				t.Errorf("email %q", got)
			}
			if got := attr(t, tok, claimGiven); got != "Alice" {
				t.Errorf("givenname %q", got)
			}
			if got := attr(t, tok, claimRole); !strings.Contains(got, "admin") || !strings.Contains(got, "staff") {
				t.Errorf("roles %q, want admin and staff from the groups", got)
			}
		})
	}
	t.Run("a wrong LDAP password is refused like any wrong password", func(t *testing.T) {
		_, err := issue("CORP/alice", "wrong")
		if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wsse:FailedAuthentication" || !strings.Contains(fe.Reason, "could not be authenticated") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("an LDAP user without a mapped admin role is not authorised", func(t *testing.T) {
		_, err := issue("CORP/bob", "Bob#1234x")
		if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wsse:FailedAuthentication" {
			t.Fatalf("wrong password for bob: %v", err)
		}
		_, err = issue("CORP/bob", "Bob#1234")
		if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wst:RequestFailed" || !strings.Contains(fe.Reason, "not authorized") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("stopping slapd gives a clear fault and restarting it restores service", func(t *testing.T) {
		if err := dir.Stop(); err != nil {
			t.Fatal(err)
		}
		// A fresh password so the verified-credential cache cannot answer.
		start := time.Now()
		_, err := issue("CORP/bob", "Bob#other")
		fe, ok := err.(*client.FaultError)
		if !ok || fe.Code != "wst:RequestFailed" || !strings.Contains(fe.Reason, "user store unavailable") {
			t.Fatalf("with slapd down: %v", err)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("the outage took %s to report (timeout 2s)", d)
		}
		if err := dir.Start(); err != nil {
			t.Fatal(err)
		}
		// o*brien (no admin group) has never logged in, so nothing is cached:
		// a "not authorized" answer proves a real bind succeeded again.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := issue("CORP/o*brien", "Obrien#1")
			if fe, ok := err.(*client.FaultError); ok && strings.Contains(fe.Reason, "not authorized") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("service did not resume after slapd came back: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

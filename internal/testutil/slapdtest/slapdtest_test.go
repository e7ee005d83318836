package slapdtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

const fixture = `dn: uid=alice,` + Suffix + `
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: secret-alice
`

func writeFixture(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "f.ldif")
	if err := os.WriteFile(p, []byte(fixture), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func dial(t *testing.T, url string, opts ...ldap.DialOpt) (*ldap.Conn, error) {
	t.Helper()
	c, err := ldap.DialURL(url, append(opts, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))...)
	if err == nil {
		c.SetTimeout(2 * time.Second)
	}
	return c, err
}

func bindAlice(t *testing.T, url string) error {
	t.Helper()
	c, err := dial(t, url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind("uid=alice,"+Suffix, "secret-alice")
}

func TestServer(t *testing.T) {
	s := New(t, Options{LDIF: []string{writeFixture(t)}})

	t.Run("a fixture user can bind", func(t *testing.T) {
		if err := bindAlice(t, s.URL); err != nil {
			t.Fatalf("bind: %v\n%s", err, s.Log())
		}
	})
	t.Run("a stopped server refuses connections", func(t *testing.T) {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := bindAlice(t, s.URL); err == nil {
			t.Fatal("bind succeeded against a stopped server")
		}
	})
	t.Run("a restarted server serves the same data on the same port", func(t *testing.T) {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		if err := bindAlice(t, s.URL); err != nil {
			t.Fatalf("bind after restart: %v\n%s", err, s.Log())
		}
	})
	t.Run("a paused server accepts connections but does not answer until resumed", func(t *testing.T) {
		c, err := dial(t, s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := s.Pause(); err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(300 * time.Millisecond)
		if err := c.Bind(s.RootDN, s.RootPW); err == nil {
			t.Fatal("a paused server answered a bind")
		}
		if err := s.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := bindAlice(t, s.URL); err != nil {
			t.Fatalf("bind after resume: %v", err)
		}
	})
}

func TestTLS(t *testing.T) {
	s := New(t, Options{TLS: true, LDIF: []string{writeFixture(t)}})
	pemCA, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	t.Run("ldaps verifies against the generated CA", func(t *testing.T) {
		c, err := dial(t, s.LDAPSURL, ldap.DialWithTLSConfig(cfg))
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", s.LDAPSURL, err, s.Log())
		}
		defer c.Close()
		if err := c.Bind("uid=alice,"+Suffix, "secret-alice"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("StartTLS on the plain port verifies against the generated CA", func(t *testing.T) {
		c, err := dial(t, s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(cfg); err != nil {
			t.Fatalf("StartTLS: %v\n%s", err, s.Log())
		}
		if err := c.Bind("uid=alice,"+Suffix, "secret-alice"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStartReportsATakenPort(t *testing.T) {
	s := New(t, Options{LDIF: []string{writeFixture(t)}})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", strings.TrimPrefix(s.URL, "ldap://"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Start(); !errors.Is(err, errPortTaken) {
		t.Fatalf("Start on a taken port = %v, want errPortTaken (New retries other ports on it)", err)
	}
}

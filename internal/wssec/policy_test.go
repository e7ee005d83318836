package wssec

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestSecurityScenariosParse(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"", "usernametoken", true},
		{"usernametoken", "usernametoken", true},
		{"X509", "x509", true},
		{"mutual-tls", "mutual-tls", true},
		{"usernametoken+x509", "usernametoken+x509", true},
		{"x509|usernametoken", "x509|usernametoken", true},
		{"x509, mutual-tls", "x509|mutual-tls", true},
		{" usernametoken + mutual-tls ", "usernametoken+mutual-tls", true},
		{"kerberos", "", false},
		{"x509+x509", "", false},
		{"x509+", "", false},
		{"|", "", false},
	}
	for _, c := range cases {
		t.Run("scenario "+c.in, func(t *testing.T) {
			pol, err := ParsePolicy(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if c.ok && pol.String() != c.want {
				t.Fatalf("got %s, want %s", pol, c.want)
			}
		})
	}
	pol, _ := ParsePolicy("usernametoken|x509+mutual-tls")
	if !pol.Uses(MethodMutualTLS) || !pol.Uses(MethodX509) {
		t.Fatal("Uses misses a method of the second alternative")
	}
	if pol, _ := ParsePolicy("x509"); pol.Uses(MethodMutualTLS) {
		t.Fatal("x509 does not use mutual TLS")
	}
}

func TestUserCertificateAliasesRoundTrip(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 1024)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	c, _ := x509.ParseCertificate(der)
	for _, login := range []string{"alice", "LDAP/bob", "carol@example.test", "name#with#hashes"} {
		t.Run(login, func(t *testing.T) {
			got, ok := ParseUserCertAlias(UserCertAlias(login, c))
			if !ok || got != login {
				t.Fatalf("got %q %v", got, ok)
			}
		})
	}
	if _, ok := ParseUserCertAlias("rp-cert"); ok {
		t.Fatal("an RP alias parsed as a user certificate")
	}
	if _, err := CAAlias("serial", "corp"); err == nil {
		t.Fatal("unknown mapping rule accepted")
	}
}

func TestDistinguishedNamesCompareAcrossLibraries(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"CN=Test CA,O=Example", "CN=Test CA,O=Example", true},
		{"CN=Test CA, O=Example", "O=Example,CN=Test CA", true},
		{"cn=test ca,o=example", "CN=Test CA,O=Example", true},
		{"CN=Test CA,O=Example", "CN=Other CA,O=Example", false},
	}
	for _, c := range cases {
		if got := sameDN(c.a, c.b); got != c.same {
			t.Errorf("sameDN(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

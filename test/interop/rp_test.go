package interop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// dataEncryption is an `avouch rp add --data-encryption` choice and what
// the EncryptedData must then state.
type dataEncryption struct {
	name   string // the CLI's name
	uri    string // EncryptionMethod Algorithm
	keyLen int    // session key bytes
}

var rpDataEncryptions = []dataEncryption{
	{"aes128-cbc", xencNS + "aes128-cbc", 16},
	{"aes192-cbc", xencNS + "aes192-cbc", 24},
	{"aes256-cbc", xencNS + "aes256-cbc", 32},
	{"aes128-gcm", xenc11NS + "aes128-gcm", 16},
	{"aes192-gcm", xenc11NS + "aes192-gcm", 24},
	{"aes256-gcm", xenc11NS + "aes256-gcm", 32},
}

// keyTransport is an `avouch rp add --key-transport` choice and what the
// EncryptedKey must then state.
type keyTransport struct {
	name   string // the CLI's name
	uri    string // EncryptionMethod Algorithm
	digest string // its ds:DigestMethod (absent means SHA-1)
	mgf    string // its xenc11:MGF (absent means MGF1 with SHA-1); "" for rsa-oaep-mgf1p, which has none
	// oaepMD and mgf1MD are the same parameters as openssl pkeyutl names
	// them.
	oaepMD, mgf1MD string
	// xmlsec1 says whether xmlsec1 1.2.37 (Debian 12) knows the URI. It
	// does not know XML-Enc 1.1's rsa-oaep at all: it fails with
	// "xmlSecTransformIdListFindByHref ... href=http://www.w3.org/2009/xmlenc11#rsa-oaep"
	// whatever the digest and MGF.
	xmlsec1 bool
}

var rpKeyTransports = []keyTransport{
	{"rsa-oaep-mgf1p", xencNS + "rsa-oaep-mgf1p", dsigNS + "sha1", "", "sha1", "sha1", true},
	{"rsa-oaep-sha256", xenc11NS + "rsa-oaep", xencNS + "sha256", xenc11NS + "mgf1sha256", "sha256", "sha256", false},
	{"rsa-oaep-sha1", xenc11NS + "rsa-oaep", dsigNS + "sha1", xenc11NS + "mgf1sha1", "sha1", "sha1", false},
}

var samlVersions = []struct{ saml, tokenType string }{{"2.0", tokenSAML20}, {"1.1", tokenSAML11}}

// reKeyInfoWithEncryptedKey is the EncryptedData's ds:KeyInfo holding the
// EncryptedKey, to be replaced by a KeyName for xmlsec1 --aeskey.
var reKeyInfoWithEncryptedKey = regexp.MustCompile(`(?s)<(?:[\w.-]+:)?KeyInfo(?:\s[^>]*)?>\s*<(?:[\w.-]+:)?EncryptedKey[\s>].*</(?:[\w.-]+:)?EncryptedKey\s*>\s*</(?:[\w.-]+:)?KeyInfo\s*>`)

// TestEncryptedTokensDecryptInXmlsec1WithTheRPKeyOnly registers one relying
// party per data encryption × key transport the CLI offers, all with
// --encrypt and the same openssl-made certificate, and has each issue a
// SAML 2.0 and a SAML 1.1 token. Each token must state exactly the
// algorithms chosen, decrypt in xmlsec1 with the RP's key (`xmlsec1 --decrypt
// --privkey-pem rp.key --output plain.xml encrypted.xml` on the token as
// cut from the RSTR: saml2:EncryptedAssertion, or the bare EncryptedData of
// SAML 1.1) to an assertion that xmlsec1 and samlsign verify, and not
// decrypt with another RSA key.
//
// xmlsec1 1.2.37 does not know XML-Enc 1.1 rsa-oaep (rsa-oaep-sha256 and
// rsa-oaep-sha1). For those the test requires exactly that error, logs the
// command, and checks both layers separately: openssl pkeyutl unwraps the
// session key with the stated OAEP digest and MGF1 hash, and xmlsec1
// decrypts the data with that key (--aeskey, the EncryptedKey replaced by a
// KeyName). A newer xmlsec1 that knows rsa-oaep gets the full check.
func TestEncryptedTokensDecryptInXmlsec1WithTheRPKeyOnly(t *testing.T) {
	t.Parallel()
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	openssl := testutil.Tool(t, "openssl")
	testutil.Tool(t, "samlsign")
	srv := startPrivateServer(t)
	dir := t.TempDir()
	rpKey, rpCert := rsaCert(t, openssl, dir, "rp")
	otherKey, _ := rsaCert(t, openssl, dir, "other")

	type tc struct {
		da        dataEncryption
		kt        keyTransport
		appliesTo string
	}
	var cases []tc
	for _, kt := range rpKeyTransports {
		for _, da := range rpDataEncryptions {
			c := tc{da, kt, "urn:interop:enc:" + da.name + ":" + kt.name}
			args := []string{"--endpoint", c.appliesTo, "--encrypt", "--data-encryption", da.name, "--key-transport", kt.name}
			if len(cases) == 0 {
				// The first RP brings the certificate into the trust
				// store, the others name it.
				args = append(args, "--cert-file", rpCert, "--cert-alias", "interop-rp")
			} else {
				args = append(args, "--cert-alias", "interop-rp")
			}
			addRP(t, srv, args...)
			cases = append(cases, c)
		}
	}
	// The server reloads the whole registry at once: when the last RP
	// added encrypts, all do.
	last := cases[len(cases)-1].appliesTo
	took := waitUntil(t, 5*time.Second, "the running server encrypts for RPs added with `avouch rp add`", func() (bool, string) {
		status, body, err := issueRaw(srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: last})
		return err == nil && status == 200 && bytes.Contains(body, []byte("EncryptedData")), string(body)
	})
	t.Logf("the server encrypted for the new RPs %v after the last `avouch rp add`", took.Round(100*time.Millisecond))

	for _, c := range cases {
		for _, v := range samlVersions {
			name := "a SAML " + v.saml + " token with " + c.da.name + " and " + c.kt.name +
				" decrypts in xmlsec1 with the RP key only and verifies"
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				rstr, token, tokenType, body := issueToken(t, srv, rst{User: textUser.Name, Password: textUser.Password,
					AppliesTo: c.appliesTo, TokenType: v.tokenType})
				checkTokenType(t, tokenType, v.saml)
				ed, err := encryptedDataOf(token, v.saml)
				if err != nil {
					t.Fatalf("%v\n%s", err, token)
				}

				// The algorithms chosen with `avouch rp add`.
				if got := ed.attr("Type"); got != xencNS+"Element" {
					t.Errorf("EncryptedData Type = %q, want %sElement", got, xencNS)
				}
				if got := childAlgorithm(ed, xencNS, "EncryptionMethod"); got != c.da.uri {
					t.Errorf("EncryptedData algorithm = %q, want %q (--data-encryption %s)", got, c.da.uri, c.da.name)
				}
				ek, err := onlyElem(ed, xencNS, "EncryptedKey")
				if err != nil {
					t.Fatalf("EncryptedData: %v\n%s", err, token)
				}
				ems := ek.find(xencNS, "EncryptionMethod")
				if len(ems) != 1 {
					t.Fatalf("EncryptedKey has %d EncryptionMethod elements", len(ems))
				}
				if got := ems[0].attr("Algorithm"); got != c.kt.uri {
					t.Errorf("EncryptedKey algorithm = %q, want %q (--key-transport %s)", got, c.kt.uri, c.kt.name)
				}
				if got := childAlgorithm(ems[0], dsigNS, "DigestMethod"); got != c.kt.digest && (got != "" || c.kt.digest != dsigNS+"sha1") {
					t.Errorf("EncryptedKey OAEP digest = %q, want %q", got, c.kt.digest)
				}
				if got := childAlgorithm(ems[0], xenc11NS, "MGF"); got != c.kt.mgf && (got != "" || c.kt.mgf != xenc11NS+"mgf1sha1") {
					t.Errorf("EncryptedKey MGF = %q, want %q", got, c.kt.mgf)
				}
				cv, err := onlyElem(ek, xencNS, "CipherValue")
				if err != nil {
					t.Fatal(err)
				}
				wrapped, err := b64Text(cv)
				if err != nil {
					t.Fatalf("EncryptedKey CipherValue: %v", err)
				}

				// The key transport, checked by openssl with exactly the
				// stated OAEP digest and MGF1 hash: the RP key unwraps a
				// session key of the data algorithm's size, another key
				// does not, nor does another MGF.
				sessionKey, err := opensslOAEPDecrypt(openssl, dir, rpKey, wrapped, c.kt.oaepMD, c.kt.mgf1MD)
				if err != nil {
					t.Fatalf("the RP key does not unwrap the EncryptedKey: %v", err)
				}
				if len(sessionKey) != c.da.keyLen {
					t.Errorf("the session key has %d bytes, want %d for %s", len(sessionKey), c.da.keyLen, c.da.name)
				}
				if _, err := opensslOAEPDecrypt(openssl, dir, otherKey, wrapped, c.kt.oaepMD, c.kt.mgf1MD); err == nil {
					t.Error("another RSA key unwraps the EncryptedKey")
				}
				if c.kt.mgf1MD != "sha1" {
					if _, err := opensslOAEPDecrypt(openssl, dir, rpKey, wrapped, c.kt.oaepMD, "sha1"); err == nil {
						t.Errorf("the EncryptedKey also unwraps with MGF1-SHA-1, not only the stated %s", c.kt.mgf)
					}
				}

				// xmlsec1, as the RP runs it.
				plain, msg, command, err := xmlsec1Decrypt(xmlsec1, dir, token, "--privkey-pem", rpKey)
				switch {
				case err == nil:
					if !c.kt.xmlsec1 {
						t.Logf("this xmlsec1 now decrypts %s", c.kt.uri)
					}
					if _, msg, _, err := xmlsec1Decrypt(xmlsec1, dir, token, "--privkey-pem", otherKey); err == nil {
						t.Errorf("xmlsec1 decrypts the token with another RSA key too:\n%s", xmlsec1Errors(msg))
					}
				case c.kt.xmlsec1:
					t.Fatalf("`%s` failed: %v\n%s\ntoken:\n%s", command, err, xmlsec1Errors(msg), token)
				default:
					if !bytes.Contains(msg, []byte("xmlSecTransformIdListFindByHref")) || !bytes.Contains(msg, []byte("href="+c.kt.uri)) {
						t.Fatalf("`%s` failed, but not because it does not know %s: %v\n%s", command, c.kt.uri, err, xmlsec1Errors(msg))
					}
					if c.da.name == "aes256-cbc" {
						// The evidence, once per SAML version and transport.
						t.Logf("xmlsec1 1.2.37 does not know %s: `%s` fails with\n%s", c.kt.uri, command, firstLineOf(xmlsec1Errors(msg)))
					}
					// The data layer with the session key openssl unwrapped.
					keyFile := filepath.Join(dir, "session.key")
					if err := os.WriteFile(keyFile, sessionKey, 0o600); err != nil {
						t.Fatal(err)
					}
					byName := reKeyInfoWithEncryptedKey.ReplaceAll(token, []byte(`<ds:KeyInfo xmlns:ds="`+dsigNS+`"><ds:KeyName>session</ds:KeyName></ds:KeyInfo>`))
					if bytes.Equal(byName, token) {
						t.Fatalf("found no KeyInfo with the EncryptedKey to replace in\n%s", token)
					}
					plain, msg, command, err = xmlsec1Decrypt(xmlsec1, dir, byName, "--aeskey:session", keyFile)
					if err != nil {
						t.Fatalf("`%s` (the data encrypted with %s, its key unwrapped by openssl) failed: %v\n%s", command, c.da.uri, err, xmlsec1Errors(msg))
					}
				}

				assertion, err := decryptedAssertion(plain)
				if err != nil {
					t.Fatal(err)
				}
				verifyToken(t, srv, assertion, tokenType, expect{SAML: v.saml, User: textUser.Name, Audience: c.appliesTo, Lifetime: defaultLifetime})

				// RequestedAttachedReference names the encrypted assertion.
				root, err := parseStandalone(assertion)
				if err != nil {
					t.Fatal(err)
				}
				id := root.attr("ID")
				if v.saml == "1.1" {
					id = root.attr("AssertionID")
				}
				for _, ref := range []string{"RequestedAttachedReference", "RequestedUnattachedReference"} {
					refs := rstr.find(nsWST, ref)
					if len(refs) != 1 {
						t.Errorf("RSTR has %d %s elements, want 1", len(refs), ref)
						continue
					}
					ki, err := onlyElem(refs[0], nsWSSE, "KeyIdentifier")
					if err != nil {
						t.Errorf("%s: %v", ref, err)
					} else if got := strings.TrimSpace(ki.Text); got != id {
						t.Errorf("%s names %q, want the decrypted assertion's ID %q\n%s", ref, got, id, body)
					}
				}
			})
		}
	}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestUnregisteredAppliesTo: by default a token for an AppliesTo that no
// relying party matches is issued unencrypted with the server's settings;
// after `avouch config set refuse_unknown_relying_parties true` the running
// server refuses it with wst:RequestFailed, in SOAP 1.1 and 1.2, while a
// registered RP still gets its token.
func TestUnregisteredAppliesTo(t *testing.T) {
	t.Parallel()
	testutil.Tool(t, "xmlsec1")
	testutil.Tool(t, "samlsign")
	srv := startPrivateServer(t)
	const known, unknown = "urn:interop:registered", "urn:interop:not-registered"
	addRP(t, srv, "--endpoint", known, "--claim", claimGivenName)
	waitUntil(t, 5*time.Second, "the running server knows the RP added with `avouch rp add`", func() (bool, string) {
		status, body, err := issueRaw(srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: known})
		return err == nil && status == 200 && bytes.Contains(body, []byte(claimGivenName)), string(body)
	})

	for _, v := range samlVersions {
		t.Run("a SAML "+v.saml+" token for an unregistered AppliesTo is issued unencrypted by default", func(t *testing.T) {
			_, token, tokenType, _ := issueToken(t, srv, rst{User: textUser.Name, Password: textUser.Password,
				AppliesTo: unknown, TokenType: v.tokenType})
			if bytes.Contains(token, []byte("EncryptedData")) {
				t.Fatalf("the token is encrypted:\n%s", token)
			}
			verifyToken(t, srv, token, tokenType, expect{SAML: v.saml, User: textUser.Name, Audience: unknown, Lifetime: defaultLifetime})
		})
	}
	if t.Failed() {
		return
	}

	if _, err := srv.avouch(context.Background(), "config", "set", "--data-dir", srv.dataDir, "refuse_unknown_relying_parties", "true"); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, 5*time.Second, "the running server refuses unknown RPs after `avouch config set refuse_unknown_relying_parties true`", func() (bool, string) {
		status, body, err := issueRaw(srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: unknown})
		return err == nil && status != 200, string(body)
	})
	t.Logf("the server refused the unknown RP %v after `avouch config set`", took.Round(100*time.Millisecond))

	for _, soap := range soapVersions {
		t.Run("with refuse_unknown_relying_parties an unregistered AppliesTo is refused with wst:RequestFailed over "+soap.name, func(t *testing.T) {
			status, body, err := issueRaw(srv, rst{SOAP12: soap.soap12, User: textUser.Name, Password: textUser.Password, AppliesTo: unknown})
			if err != nil {
				t.Fatal(err)
			}
			checkFault(t, soap.soap12, status, body, 0, []string{wst("RequestFailed")})
		})
		t.Run("with refuse_unknown_relying_parties a registered RP still gets its token over "+soap.name, func(t *testing.T) {
			status, body, err := issueRaw(srv, rst{SOAP12: soap.soap12, User: textUser.Name, Password: textUser.Password, AppliesTo: known})
			if err != nil || status != 200 {
				t.Fatalf("HTTP %d %v\n%.2000s", status, err, body)
			}
		})
	}
}

// TestRelyingPartyClaimsComeWithoutAsking registers an RP with two
// `--claim` URIs: its tokens carry the user's values of both although the
// request asks for no claims, while a token for an unregistered AppliesTo
// (same user, same request) carries neither.
func TestRelyingPartyClaimsComeWithoutAsking(t *testing.T) {
	t.Parallel()
	testutil.Tool(t, "xmlsec1")
	testutil.Tool(t, "samlsign")
	srv := startPrivateServer(t)
	const rp, other = "urn:interop:claims-rp", "urn:interop:no-rp"
	addRP(t, srv, "--endpoint", rp, "--claim", claimEmail, "--claim", claimGivenName)
	waitUntil(t, 5*time.Second, "the running server knows the RP added with `avouch rp add`", func() (bool, string) {
		status, body, err := issueRaw(srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: rp})
		return err == nil && status == 200 && bytes.Contains(body, []byte(textUser.Claims[claimEmail])), string(body)
	})
	for _, v := range samlVersions {
		t.Run("a SAML "+v.saml+" token for the RP carries its claims unasked", func(t *testing.T) {
			t.Parallel()
			_, token, tokenType, _ := issueToken(t, srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: rp, TokenType: v.tokenType})
			verifyToken(t, srv, token, tokenType, expect{SAML: v.saml, User: textUser.Name, Audience: rp, Lifetime: defaultLifetime,
				Claims: map[string]string{claimEmail: textUser.Claims[claimEmail], claimGivenName: textUser.Claims[claimGivenName]}})
		})
		t.Run("a SAML "+v.saml+" token for an unregistered AppliesTo carries none of them", func(t *testing.T) {
			t.Parallel()
			_, token, _, _ := issueToken(t, srv, rst{User: textUser.Name, Password: textUser.Password, AppliesTo: other, TokenType: v.tokenType})
			root, err := parseStandalone(token)
			if err != nil {
				t.Fatal(err)
			}
			if names := attributeNames(root, v.saml); len(names) != 0 {
				t.Errorf("the token carries attributes %q, which nobody asked for:\n%s", names, token)
			}
		})
	}
}

// attributeNames lists the claim URIs of an assertion's attributes (SAML
// 1.1 splits them into AttributeNamespace and AttributeName).
func attributeNames(root *node, saml string) []string {
	var names []string
	if saml == "2.0" {
		for _, a := range root.find(nsSAML2, "Attribute") {
			names = append(names, a.attr("Name"))
		}
		return names
	}
	for _, a := range root.find(nsSAML1, "Attribute") {
		names = append(names, strings.TrimSuffix(a.attr("AttributeNamespace"), "/")+"/"+a.attr("AttributeName"))
	}
	return names
}

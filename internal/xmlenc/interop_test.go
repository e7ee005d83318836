package xmlenc

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/testutil"
)

// xmlsec1Decrypt runs the relying-party side as a stock xmlsec1 user would:
//
//	xmlsec1 --decrypt --privkey-pem rp.key --output plain.xml encrypted.xml
//
// (extra arguments, e.g. --aeskey:session, go before --output).
func xmlsec1Decrypt(t *testing.T, xmlsec1, dir string, doc []byte, keyArgs ...string) ([]byte, []byte, error) {
	t.Helper()
	in, out := filepath.Join(dir, "encrypted.xml"), filepath.Join(dir, "plain.xml")
	os.Remove(out)
	writeFile(t, in, doc)
	args := append([]string{"--decrypt"}, keyArgs...)
	args = append(args, "--output", out, in)
	msg, err := runTool(xmlsec1, args...)
	if err != nil {
		return nil, msg, err
	}
	return readFile(t, out), msg, nil
}

// opensslUnwrap decrypts an RSA-OAEP ciphertext with openssl pkeyutl and
// the given OAEP digest and MGF1 digest: an implementation independent of
// ours and of xmlsec1.
func opensslUnwrap(t *testing.T, openssl, dir, keyPath string, ct []byte, md, mgf1 string) ([]byte, error) {
	t.Helper()
	in, out := filepath.Join(dir, "wrapped.bin"), filepath.Join(dir, "unwrapped.bin")
	os.Remove(out)
	writeFile(t, in, ct)
	msg, err := runTool(openssl, "pkeyutl", "-decrypt", "-inkey", keyPath, "-in", in, "-out", out,
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+mgf1)
	if err != nil {
		return nil, fmt.Errorf("openssl pkeyutl -decrypt (%s, mgf1 %s): %v\n%s", md, mgf1, err, msg)
	}
	return readFile(t, out), nil
}

// Every data algorithm × key transport we write must decrypt in xmlsec1,
// the reference implementation behind most SAML relying parties, to exactly
// the bytes we encrypted.
//
// xmlsec1 1.2.37 knows only the XML-Enc 1.0 rsa-oaep-mgf1p (with a SHA-1
// digest); it fails on the XML-Enc 1.1 rsa-oaep URI with
// "xmlSecTransformIdListFindByHref ... href=http://www.w3.org/2009/xmlenc11#rsa-oaep".
// For those combinations the test asserts exactly that error (so a newer
// xmlsec1 that supports them makes the full check run instead) and then
// checks both layers independently: openssl pkeyutl unwraps our
// EncryptedKey with the stated OAEP digest and MGF1 hash, and xmlsec1
// decrypts the EncryptedData with that unwrapped key.
func TestXmlsec1DecryptsOurEncryptedData(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	openssl := testutil.Tool(t, "openssl")
	rp := key(t, "rp")
	keyPath, _ := rp.writePEM(t, t.TempDir())
	for _, da := range dataAlgs {
		for _, tr := range transports {
			t.Run(da.name+" with "+tr.name+" decrypts in xmlsec1 to the exact bytes", func(t *testing.T) {
				t.Parallel() // each subtest waits mostly on xmlsec1 and openssl processes
				dir := t.TempDir()
				o := tr.o
				o.DataAlgorithm = da.uri
				enc, err := EncryptElement([]byte(libxml2Form), rp.cert, o)
				if err != nil {
					t.Fatal(err)
				}
				// Embedded in an element that declares nothing of ours:
				// the EncryptedData must carry its own namespaces.
				doc := []byte(wrapperOpen + string(enc) + wrapperClose)
				// xmlsec1 replaces the EncryptedData by the parsed
				// plaintext and writes the whole document.
				want := []byte("<?xml version=\"1.0\"?>\n" + wrapperOpen + libxml2Form + wrapperClose + "\n")

				got, msg, err := xmlsec1Decrypt(t, xmlsec1, dir, doc, "--privkey-pem", keyPath)
				switch {
				case err == nil:
					if !bytes.Equal(got, want) {
						t.Fatalf("xmlsec1 output differs:\n got %q\nwant %q", got, want)
					}
					if !tr.xmlsec1Supported {
						t.Logf("this xmlsec1 now supports %s", tr.name)
					}
				case tr.xmlsec1Supported:
					t.Fatalf("xmlsec1 --decrypt failed: %v\n%s\ninput: %s", err, msg, excerpt(doc))
				default:
					if !bytes.Contains(msg, []byte("xmlSecTransformIdListFindByHref")) || !bytes.Contains(msg, []byte("href="+AlgRSAOAEP)) {
						t.Fatalf("xmlsec1 failed, but not for the unsupported rsa-oaep URI: %v\n%s", err, msg)
					}
					t.Logf("as expected, xmlsec1 1.2.37 does not know %s; checking both layers separately", AlgRSAOAEP)
				}

				// Key transport, checked by openssl with exactly the
				// digest and MGF1 hash the EncryptedKey states.
				ed := encryptedData(t, enc)
				ek := mustFind(t, ed, NSXenc, "EncryptedKey")
				sessionKey, err := opensslUnwrap(t, openssl, dir, keyPath, cipherValueOf(t, ek), tr.oaepMD, tr.mgf1MD)
				if err != nil {
					t.Fatalf("openssl cannot unwrap our %s EncryptedKey: %v", tr.name, err)
				}
				if len(sessionKey) != da.keySize {
					t.Fatalf("unwrapped key has %d bytes, want %d", len(sessionKey), da.keySize)
				}
				if tr.oaepMD != "sha1" || tr.mgf1MD != "sha1" {
					// And it is really that MGF: with MGF1-SHA-1 instead
					// the unwrap must fail.
					if _, err := opensslUnwrap(t, openssl, dir, keyPath, cipherValueOf(t, ek), tr.oaepMD, "sha1"); err == nil {
						t.Fatal("openssl unwrapped the key with MGF1-SHA-1 too")
					}
				}

				// Data layer, checked by xmlsec1 with that key.
				writeFile(t, filepath.Join(dir, "session.key"), sessionKey)
				ki := mustFind(t, ed, NSDsig, "KeyInfo")
				ki.Child = nil
				ki.CreateElement("ds:KeyName").SetText("session")
				byName := []byte(wrapperOpen + string(serializeEl(t, ed)) + wrapperClose)
				got, msg, err = xmlsec1Decrypt(t, xmlsec1, dir, byName, "--aeskey:session", filepath.Join(dir, "session.key"))
				if err != nil {
					t.Fatalf("xmlsec1 cannot decrypt our %s data with the unwrapped key: %v\n%s", da.name, err, msg)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("xmlsec1 output differs:\n got %q\nwant %q", got, want)
				}

				// Byte-exactness for any bytes: without a Type, xmlsec1
				// writes the decrypted octets as they are.
				enc, err = EncryptElement([]byte(rawBytes), rp.cert, o)
				if err != nil {
					t.Fatal(err)
				}
				ed = encryptedData(t, enc)
				ed.RemoveAttr("Type")
				if tr.xmlsec1Supported {
					got, msg, err = xmlsec1Decrypt(t, xmlsec1, dir, serializeEl(t, ed), "--privkey-pem", keyPath)
				} else {
					ek := mustFind(t, ed, NSXenc, "EncryptedKey")
					var sessionKey []byte
					if sessionKey, err = opensslUnwrap(t, openssl, dir, keyPath, cipherValueOf(t, ek), tr.oaepMD, tr.mgf1MD); err != nil {
						t.Fatal(err)
					}
					writeFile(t, filepath.Join(dir, "session.key"), sessionKey)
					ki := mustFind(t, ed, NSDsig, "KeyInfo")
					ki.Child = nil
					ki.CreateElement("ds:KeyName").SetText("session")
					got, msg, err = xmlsec1Decrypt(t, xmlsec1, dir, serializeEl(t, ed), "--aeskey:session", filepath.Join(dir, "session.key"))
				}
				if err != nil {
					t.Fatalf("xmlsec1 --decrypt (no Type): %v\n%s", err, msg)
				}
				if !bytes.Equal(got, []byte(rawBytes)) {
					t.Fatalf("xmlsec1 decrypted other bytes:\n got %q\nwant %q", got, rawBytes)
				}
			})
		}
	}
}

// The recipient may be named by issuer and serial number only (some
// relying parties match the decryption key that way); xmlsec1, holding the
// key and its certificate, must still decrypt.
func TestXmlsec1DecryptsWithIssuerSerialKeyInfo(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	rp := key(t, "rp")
	dir := t.TempDir()
	keyPath, certPath := rp.writePEM(t, dir)
	enc, err := EncryptElement([]byte(libxml2Form), rp.cert, Options{KeyInfo: KeyIdentifierIssuerSerial})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("X509Certificate")) || !bytes.Contains(enc, []byte("<ds:X509SerialNumber>1000</ds:X509SerialNumber>")) {
		t.Fatalf("KeyInfo is not issuer/serial only: %s", enc)
	}
	got, msg, err := xmlsec1Decrypt(t, xmlsec1, dir, enc, "--privkey-pem", keyPath+","+certPath)
	if err != nil {
		t.Fatalf("xmlsec1: %v\n%s", err, msg)
	}
	if want := "<?xml version=\"1.0\"?>\n" + libxml2Form + "\n"; string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// xmlsec1Encrypt encrypts the saml2:Assertion of doc with a template from
// testdata:
//
//	xmlsec1 --encrypt KEYARGS --xml-data doc.xml \
//	  --node-name urn:oasis:names:tc:SAML:2.0:assertion:Assertion \
//	  --output encrypted.xml template.xml
func xmlsec1Encrypt(t *testing.T, xmlsec1, dir, template, dataAlg string, keyArgs ...string) []byte {
	t.Helper()
	tmpl := bytes.ReplaceAll(readFile(t, filepath.Join("testdata", template)), []byte("DATA_ALGORITHM"), []byte(dataAlg))
	tmplPath, dataPath, out := filepath.Join(dir, "template.xml"), filepath.Join(dir, "doc.xml"), filepath.Join(dir, "encrypted.xml")
	writeFile(t, tmplPath, tmpl)
	writeFile(t, dataPath, []byte("<?xml version=\"1.0\"?>\n<root>"+libxml2Form+"</root>\n"))
	args := append([]string{"--encrypt"}, keyArgs...)
	args = append(args, "--xml-data", dataPath, "--node-name", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", "--output", out, tmplPath)
	if msg, err := runTool(xmlsec1, args...); err != nil {
		t.Fatalf("xmlsec1 --encrypt: %v\n%s", err, msg)
	}
	return readFile(t, out)
}

// What xmlsec1 encrypts we must decrypt, to the bytes xmlsec1 serialised
// (libxml2 writes this element unchanged). For XML-Enc 1.1 rsa-oaep, which
// xmlsec1 1.2.37 cannot write, xmlsec1 encrypts the data with a known key
// and openssl pkeyutl wraps that key with the OAEP digest and MGF1 hash.
func TestWeDecryptXmlsec1EncryptedData(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	openssl := testutil.Tool(t, "openssl")
	rp := key(t, "rp")
	_, certPath := rp.writePEM(t, t.TempDir())
	for _, da := range dataAlgs {
		for _, tr := range transports {
			t.Run(da.name+" with "+tr.name+" from xmlsec1 decrypts to the element xmlsec1 encrypted", func(t *testing.T) {
				t.Parallel() // each subtest waits mostly on xmlsec1 and openssl processes
				dir := t.TempDir()
				var out []byte
				if tr.xmlsec1Supported {
					out = xmlsec1Encrypt(t, xmlsec1, dir, "xmlsec1-template-encryptedkey.xml", da.uri,
						"--pubkey-cert-pem", certPath, "--session-key", da.sessionKey)
				} else {
					sessionKey := make([]byte, da.keySize)
					rand.Read(sessionKey)
					keyFile := filepath.Join(dir, "session.key")
					writeFile(t, keyFile, sessionKey)
					out = xmlsec1Encrypt(t, xmlsec1, dir, "xmlsec1-template-keyname.xml", da.uri, "--aeskey:session", keyFile)
					wrapped := filepath.Join(dir, "wrapped.bin")
					if msg, err := runTool(openssl, "pkeyutl", "-encrypt", "-certin", "-inkey", certPath, "-in", keyFile, "-out", wrapped,
						"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+tr.oaepMD, "-pkeyopt", "rsa_mgf1_md:"+tr.mgf1MD); err != nil {
						t.Fatalf("openssl pkeyutl -encrypt: %v\n%s", err, msg)
					}
					ek := `<xenc:EncryptedKey xmlns:xenc11="http://www.w3.org/2009/xmlenc11#"><xenc:EncryptionMethod Algorithm="` + AlgRSAOAEP + `">` +
						`<ds:DigestMethod Algorithm="` + tr.o.OAEPDigest + `"/><xenc11:MGF Algorithm="` + NSXenc11 + "mgf1" + tr.mgf1MD + `"/></xenc:EncryptionMethod>` +
						`<xenc:CipherData><xenc:CipherValue>` + base64.StdEncoding.EncodeToString(readFile(t, wrapped)) + `</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>`
					if !bytes.Contains(out, []byte("<ds:KeyName>session</ds:KeyName>")) {
						t.Fatalf("xmlsec1 output has no KeyName: %s", out)
					}
					out = bytes.Replace(out, []byte("<ds:KeyName>session</ds:KeyName>"), []byte(ek), 1)
				}
				ed := mustFind(t, parse(t, out).Root(), NSXenc, "EncryptedData")
				got, err := Decrypt(ed, rp.priv, Allowed{})
				if err != nil {
					t.Fatalf("Decrypt: %v\n%s", err, excerpt(out))
				}
				if string(got) != libxml2Form {
					t.Fatalf("got %q\nwant %q", got, libxml2Form)
				}
			})
		}
	}
	// SAML 2.0 also puts the EncryptedKey beside the EncryptedData in
	// saml2:EncryptedAssertion, pointed to by ds:RetrievalMethod or by the
	// key's ReferenceList.
	layouts := []struct {
		name  string
		apply func(ed, ek, ki *etree.Element)
	}{
		{"an EncryptedKey beside the data, referenced by RetrievalMethod", func(ed, ek, ki *etree.Element) {
			ek.CreateAttr("Id", "_ek1")
			rm := ki.CreateElement("ds:RetrievalMethod")
			rm.CreateAttr("Type", TypeEncryptedKey)
			rm.CreateAttr("URI", "#_ek1")
		}},
		{"an EncryptedKey beside the data, naming it in its ReferenceList", func(ed, ek, ki *etree.Element) {
			ed.CreateAttr("Id", "_ed1")
			ek.CreateElement("xenc:ReferenceList").CreateElement("xenc:DataReference").CreateAttr("URI", "#_ed1")
			ed.RemoveChild(ki)
		}},
		{"an EncryptedKey beside the data with no reference at all", func(ed, ek, ki *etree.Element) {
			ed.RemoveChild(ki)
		}},
	}
	for _, l := range layouts {
		t.Run("xmlsec1's key moved to "+l.name+" still decrypts", func(t *testing.T) {
			out := xmlsec1Encrypt(t, xmlsec1, t.TempDir(), "xmlsec1-template-encryptedkey.xml", AlgAES256GCM,
				"--pubkey-cert-pem", certPath, "--session-key", "aes-256")
			doc := parse(t, out)
			ed := mustFind(t, doc.Root(), NSXenc, "EncryptedData")
			ki := mustFind(t, ed, NSDsig, "KeyInfo")
			ek := mustFind(t, ki, NSXenc, "EncryptedKey")
			ki.RemoveChild(ek)
			// Its prefixes were declared on its old ancestors.
			ek.CreateAttr("xmlns:xenc", NSXenc)
			ek.CreateAttr("xmlns:ds", NSDsig)
			ed.Parent().AddChild(ek)
			l.apply(ed, ek, ki)
			reparsed := mustFind(t, parse(t, serializeEl(t, doc.Root())).Root(), NSXenc, "EncryptedData")
			got, err := Decrypt(reparsed, rp.priv, Allowed{})
			if err != nil {
				t.Fatalf("Decrypt: %v\n%s", err, serializeEl(t, doc.Root()))
			}
			if string(got) != libxml2Form {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// A proof key wrapped by EncryptKey must unwrap in openssl with exactly the
// OAEP digest and MGF1 hash the EncryptedKey states (xmlsec1 1.2.37 cannot
// decrypt a lone EncryptedKey: "failed to find default node with
// name=EncryptedData").
func TestOpenSSLUnwrapsOurEncryptedKey(t *testing.T) {
	openssl := testutil.Tool(t, "openssl")
	rp := key(t, "rp")
	dir := t.TempDir()
	keyPath, _ := rp.writePEM(t, dir)
	for _, tr := range transports {
		t.Run("a proof key wrapped with "+tr.name+" unwraps in openssl", func(t *testing.T) {
			proof := make([]byte, 32)
			rand.Read(proof)
			b, err := EncryptKey(proof, rp.cert, tr.o)
			if err != nil {
				t.Fatal(err)
			}
			ek := encryptedData(t, b)
			got, err := opensslUnwrap(t, openssl, dir, keyPath, cipherValueOf(t, ek), tr.oaepMD, tr.mgf1MD)
			if err != nil || !bytes.Equal(got, proof) {
				t.Fatalf("openssl unwrapped %x, %v; want %x", got, err, proof)
			}
			if !strings.Contains(string(b), `Algorithm="`+tr.o.KeyTransport+`"`) {
				t.Fatalf("EncryptedKey does not state %s: %s", tr.o.KeyTransport, b)
			}
		})
	}
}

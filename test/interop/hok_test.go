package interop

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// hokCall is one run of clients/zeep_hok.py.
type hokCall struct {
	AppliesTo    string
	SAML         string // "2.0" or "1.1"
	KeyType      string // Bearer | SymmetricKey | PublicKey
	EntropyBytes int    // client entropy sent (SymmetricKey); 0: none
	KeySize      int    // wst:KeySize sent; 0: none
	UseKeyForm   string // bst | x509data | rsakeyvalue (PublicKey)
	UseKeyCert   string // PEM file of the client's certificate
	RSAModulus   string // base64, for rsakeyvalue
	RSAExponent  string
}

// hokResult is what clients/zeep_hok.py prints.
type hokResult struct {
	OK               bool              `json:"ok"`
	Status           int               `json:"status"`
	Request          string            `json:"request"`
	Response         string            `json:"response"`
	Fault            map[string]string `json:"fault"`
	Error            string            `json:"error"`
	ClientEntropy    *string           `json:"client_entropy"`
	ServerEntropy    *string           `json:"server_entropy"`
	ComputedKey      *string           `json:"computed_key"`
	BinarySecretType *string           `json:"binary_secret_type"`
	KeySize          *int              `json:"key_size"`
	ProofKey         *string           `json:"proof_key"`
}

func runZeepHoK(t *testing.T, srv *server, c hokCall) hokResult {
	t.Helper()
	python := testutil.PythonModule(t, "zeep")
	tokenType := tokenSAML20
	if c.SAML == "1.1" {
		tokenType = tokenSAML11
	}
	args := []string{"clients/zeep_hok.py", "--url", srv.STS, "--user", textUser.Name, "--password", textUser.Password,
		"--applies-to", c.AppliesTo, "--token-type", tokenType, "--key-type", c.KeyType}
	if c.EntropyBytes > 0 {
		args = append(args, "--entropy-bytes", strconv.Itoa(c.EntropyBytes))
	}
	if c.KeySize > 0 {
		args = append(args, "--key-size", strconv.Itoa(c.KeySize))
	}
	if c.UseKeyForm != "" {
		args = append(args, "--use-key-form", c.UseKeyForm)
	}
	if c.UseKeyCert != "" {
		args = append(args, "--use-key-cert", c.UseKeyCert)
	}
	if c.RSAModulus != "" {
		args = append(args, "--rsa-modulus", c.RSAModulus, "--rsa-exponent", c.RSAExponent)
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zeep client crashed: %v\n%s", err, stderr.String())
	}
	var r hokResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("zeep client output: %v\n%s\n%s", err, out, stderr.String())
	}
	return r
}

// withKeyType turns the Bearer RST that rst.envelope writes into one of
// another KeyType.
func withKeyType(env []byte, keyType string) []byte {
	return bytes.Replace(env, []byte(nsWST+"/Bearer</t:KeyType>"), []byte(nsWST+"/"+keyType+"</t:KeyType>"), 1)
}

const (
	cmHolderOfKey20 = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
	cmHolderOfKey11 = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
)

// confirmationKeyInfos returns the ds:KeyInfo of every subject confirmation
// of an assertion, failing the test unless each is holder-of-key: SAML 2.0
// SubjectConfirmation Method holder-of-key with a SubjectConfirmationData of
// xsi:type KeyInfoConfirmationDataType holding the KeyInfo; SAML 1.1
// ConfirmationMethod holder-of-key beside the KeyInfo.
func confirmationKeyInfos(t *testing.T, root *node, saml string) []*node {
	t.Helper()
	var out []*node
	if saml == "2.0" {
		scs := root.find(nsSAML2, "SubjectConfirmation")
		if len(scs) == 0 {
			t.Fatal("the assertion has no SubjectConfirmation")
		}
		for _, sc := range scs {
			if m := sc.attr("Method"); m != cmHolderOfKey20 {
				t.Errorf("SubjectConfirmation Method = %q, want %q", m, cmHolderOfKey20)
			}
			scd, err := onlyElem(sc, nsSAML2, "SubjectConfirmationData")
			if err != nil {
				t.Fatalf("SubjectConfirmation: %v", err)
			}
			// The type is a QName; the prefix must be SAML 2.0's, which
			// parseStandalone has checked is declared.
			if typ := attrNS(scd, xsiNS, "type"); typ != "KeyInfoConfirmationDataType" && !strings.HasSuffix(typ, ":KeyInfoConfirmationDataType") {
				t.Errorf("SubjectConfirmationData xsi:type = %q, want KeyInfoConfirmationDataType", typ)
			}
			out = append(out, childElems(scd, dsigNS, "KeyInfo")...)
		}
	} else {
		scs := root.find(nsSAML1, "SubjectConfirmation")
		if len(scs) == 0 {
			t.Fatal("the assertion has no SubjectConfirmation")
		}
		for _, sc := range scs {
			var methods []string
			for _, m := range childElems(sc, nsSAML1, "ConfirmationMethod") {
				methods = append(methods, strings.TrimSpace(m.Text))
			}
			if len(methods) != 1 || methods[0] != cmHolderOfKey11 {
				t.Errorf("ConfirmationMethod = %q, want [%q]", methods, cmHolderOfKey11)
			}
			out = append(out, childElems(sc, dsigNS, "KeyInfo")...)
		}
	}
	if len(out) == 0 {
		t.Fatal("no subject confirmation holds a ds:KeyInfo")
	}
	return out
}

// childElems returns n's child elements named {space}local.
func childElems(n *node, space, local string) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.Name.Space == space && c.Name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// TestZeepHolderOfKeyTokens drives python3-zeep (a raw RST with lxml,
// zeep's UsernameToken and transport) for holder-of-key tokens.
//
// SymmetricKey: with client entropy the client derives the proof key itself
// (P_SHA1 over its entropy and the server's, in Python's hmac, nothing of
// ours), without it takes the returned BinarySecret; either way the proof
// key encrypted for the relying party in the assertion's holder-of-key
// confirmation must decrypt with the RP's private key to exactly those
// bytes: in openssl pkeyutl with the stated OAEP parameters, and in xmlsec1
// (an EncryptedData whose ds:KeyInfo is the assertion's EncryptedKey and
// whose data the client encrypted with its proof key must decrypt).
// KeySize 128 and 512 are honoured, 1024 is refused, as is SymmetricKey for
// an RP without a certificate or with `--key-type Bearer`.
//
// PublicKey: the certificate (or RSA key) zeep sends in UseKey is exactly
// the key of the assertion's holder-of-key confirmation.
func TestZeepHolderOfKeyTokens(t *testing.T) {
	t.Parallel()
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	openssl := testutil.Tool(t, "openssl")
	testutil.Tool(t, "samlsign")
	testutil.PythonModule(t, "zeep")
	srv := startPrivateServer(t)
	dir := t.TempDir()
	rpKey, rpCert := rsaCert(t, openssl, dir, "rp")
	otherKey, _ := rsaCert(t, openssl, dir, "other")
	_, clientCert := rsaCert(t, openssl, dir, "zeep-client")

	const (
		rpHoK       = "urn:interop:hok"
		rpNoCert    = "urn:interop:hok:no-certificate"
		rpBearer    = "urn:interop:hok:bearer-only"
		rpOAEP256   = "urn:interop:hok:oaep-sha256"
		invalidReq  = "InvalidRequest"
		symmetric   = "SymmetricKey"
		publicKey   = "PublicKey"
		bearer      = "Bearer"
		defaultBits = 256
	)
	addRP(t, srv, "--endpoint", rpHoK, "--cert-file", rpCert, "--cert-alias", "hok-rp")
	addRP(t, srv, "--endpoint", rpNoCert)
	addRP(t, srv, "--endpoint", rpBearer, "--cert-alias", "hok-rp", "--key-type", "Bearer")
	addRP(t, srv, "--endpoint", rpOAEP256, "--cert-alias", "hok-rp", "--key-transport", "rsa-oaep-sha256")
	// The registry reloads as a whole: once the last RP gets SymmetricKey
	// tokens, all four are known.
	waitUntil(t, 5*time.Second, "the running server knows the RPs added with `avouch rp add`", func() (bool, string) {
		r := rst{User: textUser.Name, Password: textUser.Password, AppliesTo: rpOAEP256}
		status, body, err := post(srv.STS, withKeyType(r.envelope(), symmetric), r.contentType())
		return err == nil && status == 200, string(body)
	})

	transports := map[string]keyTransport{}
	for _, kt := range rpKeyTransports {
		transports[kt.name] = kt
	}

	type symCase struct {
		name      string
		call      hokCall
		transport string // the RP's --key-transport
		wantBits  int    // 0: refused
		fault     string // with this wst fault
	}
	symCases := []symCase{
		{name: "zeep with 32 bytes of entropy and no KeySize derives the 256-bit PSHA1 key the RP decrypts from a SAML 2.0 assertion",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0", EntropyBytes: 32}, transport: "rsa-oaep-mgf1p", wantBits: defaultBits},
		{name: "zeep with entropy and KeySize 128 derives the 128-bit PSHA1 key the RP decrypts from a SAML 1.1 assertion",
			call: hokCall{AppliesTo: rpHoK, SAML: "1.1", EntropyBytes: 16, KeySize: 128}, transport: "rsa-oaep-mgf1p", wantBits: 128},
		{name: "zeep with entropy and KeySize 512 derives the 512-bit PSHA1 key the RP decrypts",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0", EntropyBytes: 64, KeySize: 512}, transport: "rsa-oaep-mgf1p", wantBits: 512},
		{name: "zeep with entropy derives the PSHA1 key an RP with rsa-oaep-sha256 decrypts",
			call: hokCall{AppliesTo: rpOAEP256, SAML: "2.0", EntropyBytes: 32}, transport: "rsa-oaep-sha256", wantBits: defaultBits},
		{name: "zeep without entropy gets a 256-bit BinarySecret that is the key the RP decrypts from a SAML 2.0 assertion",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0"}, transport: "rsa-oaep-mgf1p", wantBits: defaultBits},
		{name: "zeep without entropy and KeySize 128 gets a 128-bit BinarySecret that is the key the RP decrypts from a SAML 1.1 assertion",
			call: hokCall{AppliesTo: rpHoK, SAML: "1.1", KeySize: 128}, transport: "rsa-oaep-mgf1p", wantBits: 128},
		{name: "zeep without entropy and KeySize 512 gets a 512-bit BinarySecret that is the key the RP decrypts",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0", KeySize: 512}, transport: "rsa-oaep-mgf1p", wantBits: 512},
		{name: "KeySize 1024 with entropy is refused with wst:InvalidRequest",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0", EntropyBytes: 32, KeySize: 1024}, fault: invalidReq},
		{name: "KeySize 1024 without entropy is refused with wst:InvalidRequest",
			call: hokCall{AppliesTo: rpHoK, SAML: "2.0", KeySize: 1024}, fault: invalidReq},
		{name: "SymmetricKey for an RP without a certificate is refused with wst:InvalidRequest",
			call: hokCall{AppliesTo: rpNoCert, SAML: "2.0", EntropyBytes: 32}, fault: invalidReq},
		{name: "SymmetricKey for an RP with --key-type Bearer is refused with wst:InvalidRequest",
			call: hokCall{AppliesTo: rpBearer, SAML: "2.0", EntropyBytes: 32}, fault: invalidReq},
	}
	for _, c := range symCases {
		c.call.KeyType = symmetric
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runZeepHoK(t, srv, c.call)
			if c.fault != "" {
				if r.Status == 200 {
					t.Fatalf("the STS issued a token:\n%.3000s", r.Response)
				}
				checkFault(t, false, r.Status, []byte(r.Response), 0, []string{wst(c.fault)})
				return
			}
			if !r.OK || r.Status != 200 {
				t.Fatalf("zeep got no token: HTTP %d fault %v error %q\nrequest:\n%s\nresponse:\n%.3000s", r.Status, r.Fault, r.Error, r.Request, r.Response)
			}
			body := []byte(r.Response)
			checkEchoedKeyType(t, body, symmetric)

			// The RSTR's proof-token half, as zeep read it.
			if r.KeySize == nil || *r.KeySize != c.wantBits {
				t.Errorf("RSTR KeySize = %v, want %d", valueOrZero(r.KeySize), c.wantBits)
			}
			if r.ProofKey == nil {
				t.Fatalf("zeep found no proof key in the RSTR:\n%s", body)
			}
			proof, err := base64.StdEncoding.DecodeString(*r.ProofKey)
			if err != nil || len(proof) != c.wantBits/8 {
				t.Fatalf("the proof key zeep has is %d bytes (%v), want %d", len(proof), err, c.wantBits/8)
			}
			if c.call.EntropyBytes > 0 {
				if valueOrZero(r.ComputedKey) != nsWST+"/CK/PSHA1" || r.ServerEntropy == nil || r.BinarySecretType != nil {
					t.Errorf("with client entropy the RSTR must hold ComputedKey %s/CK/PSHA1 and server Entropy, not a key: ComputedKey %q, Entropy %q, BinarySecret Type %q",
						nsWST, valueOrZero(r.ComputedKey), valueOrZero(r.ServerEntropy), valueOrZero(r.BinarySecretType))
				}
				if ent, _ := base64.StdEncoding.DecodeString(valueOrZero(r.ClientEntropy)); bytes.Contains(body, []byte(*r.ProofKey)) || bytes.Equal(ent[:min(len(ent), len(proof))], proof[:min(len(ent), len(proof))]) {
					t.Error("the computed proof key is in the RSTR or is the client's entropy")
				}
			} else if r.ComputedKey != nil || r.ServerEntropy != nil || valueOrZero(r.BinarySecretType) != nsWST+"/SymmetricKey" {
				t.Errorf("without client entropy the RSTR must hold the key as BinarySecret of Type %s/SymmetricKey: ComputedKey %q, Entropy %q, BinarySecret Type %q",
					nsWST, valueOrZero(r.ComputedKey), valueOrZero(r.ServerEntropy), valueOrZero(r.BinarySecretType))
			}

			// The assertion: signed, holder-of-key, the proof key
			// encrypted for the RP.
			token, tokenType, err := extractToken(body)
			if err != nil {
				t.Fatal(err)
			}
			verifyToken(t, srv, token, tokenType, expect{SAML: c.call.SAML, User: textUser.Name, Audience: c.call.AppliesTo, Lifetime: defaultLifetime})
			root, err := parseStandalone(token)
			if err != nil {
				t.Fatal(err)
			}
			kt := transports[c.transport]
			for _, ki := range confirmationKeyInfos(t, root, c.call.SAML) {
				if len(ki.Children) != 1 {
					t.Errorf("the confirmation KeyInfo has %d children, want only the EncryptedKey", len(ki.Children))
				}
				ek, err := onlyElem(ki, xencNS, "EncryptedKey")
				if err != nil {
					t.Fatalf("confirmation KeyInfo: %v\n%s", err, token)
				}
				checkProofKeyDecrypts(t, xmlsec1, openssl, rpKey, otherKey, ek, kt, proof)
			}
		})
	}

	// Bearer stays available where SymmetricKey is refused.
	for _, rp := range []string{rpNoCert, rpBearer} {
		t.Run("a Bearer token for "+rp+" is still issued", func(t *testing.T) {
			t.Parallel()
			r := runZeepHoK(t, srv, hokCall{AppliesTo: rp, SAML: "2.0", KeyType: bearer})
			if !r.OK || r.Status != 200 {
				t.Fatalf("HTTP %d fault %v error %q\n%.3000s", r.Status, r.Fault, r.Error, r.Response)
			}
		})
	}

	clientDER := certDER(t, clientCert)
	parsed, err := x509.ParseCertificate(clientDER)
	if err != nil {
		t.Fatal(err)
	}
	pub := parsed.PublicKey.(*rsa.PublicKey)
	modulus := base64.StdEncoding.EncodeToString(pub.N.Bytes())
	exponent := base64.StdEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	pkCases := []struct {
		name  string
		call  hokCall
		fault string
	}{
		{"zeep's certificate sent in UseKey as a BinarySecurityToken is the confirmation key of a SAML 2.0 assertion",
			hokCall{AppliesTo: rpHoK, SAML: "2.0", UseKeyForm: "bst", UseKeyCert: clientCert}, ""},
		{"zeep's certificate sent in UseKey as a BinarySecurityToken is the confirmation key of a SAML 1.1 assertion",
			hokCall{AppliesTo: rpHoK, SAML: "1.1", UseKeyForm: "bst", UseKeyCert: clientCert}, ""},
		{"zeep's certificate sent in UseKey as ds:X509Data is the confirmation key of a SAML 2.0 assertion",
			hokCall{AppliesTo: rpHoK, SAML: "2.0", UseKeyForm: "x509data", UseKeyCert: clientCert}, ""},
		{"zeep's RSA key sent in UseKey as ds:RSAKeyValue is the confirmation key of a SAML 2.0 assertion",
			hokCall{AppliesTo: rpHoK, SAML: "2.0", UseKeyForm: "rsakeyvalue", RSAModulus: modulus, RSAExponent: exponent}, ""},
		{"PublicKey for an RP with --key-type Bearer is refused with wst:InvalidRequest",
			hokCall{AppliesTo: rpBearer, SAML: "2.0", UseKeyForm: "bst", UseKeyCert: clientCert}, invalidReq},
	}
	for _, c := range pkCases {
		c.call.KeyType = publicKey
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runZeepHoK(t, srv, c.call)
			if c.fault != "" {
				if r.Status == 200 {
					t.Fatalf("the STS issued a token:\n%.3000s", r.Response)
				}
				checkFault(t, false, r.Status, []byte(r.Response), 0, []string{wst(c.fault)})
				return
			}
			if !r.OK || r.Status != 200 {
				t.Fatalf("zeep got no token: HTTP %d fault %v error %q\nrequest:\n%s\nresponse:\n%.3000s", r.Status, r.Fault, r.Error, r.Request, r.Response)
			}
			body := []byte(r.Response)
			checkEchoedKeyType(t, body, publicKey)
			if bytes.Contains(body, []byte("RequestedProofToken")) || r.ProofKey != nil {
				t.Errorf("a PublicKey RSTR has a proof token: the requestor proves possession with its own key\n%s", body)
			}
			token, tokenType, err := extractToken(body)
			if err != nil {
				t.Fatal(err)
			}
			verifyToken(t, srv, token, tokenType, expect{SAML: c.call.SAML, User: textUser.Name, Audience: c.call.AppliesTo, Lifetime: defaultLifetime})
			root, err := parseStandalone(token)
			if err != nil {
				t.Fatal(err)
			}
			for _, ki := range confirmationKeyInfos(t, root, c.call.SAML) {
				if len(ki.Children) != 1 {
					t.Errorf("the confirmation KeyInfo has %d children, want 1", len(ki.Children))
				}
				if c.call.UseKeyForm == "rsakeyvalue" {
					mod, err1 := onlyElem(ki, dsigNS, "Modulus")
					exp, err2 := onlyElem(ki, dsigNS, "Exponent")
					if err1 != nil || err2 != nil {
						t.Fatalf("confirmation KeyInfo: %v %v\n%s", err1, err2, token)
					}
					m, _ := b64Text(mod)
					e, _ := b64Text(exp)
					if new(big.Int).SetBytes(m).Cmp(pub.N) != 0 || new(big.Int).SetBytes(e).Int64() != int64(pub.E) {
						t.Errorf("the confirmation RSAKeyValue is not zeep's key")
					}
					continue
				}
				certs := ki.find(dsigNS, "X509Certificate")
				if len(certs) != 1 {
					t.Fatalf("the confirmation KeyInfo holds %d certificates, want exactly zeep's\n%s", len(certs), token)
				}
				der, err := b64Text(certs[0])
				if err != nil || !bytes.Equal(der, clientDER) {
					t.Errorf("the confirmation certificate is not the one zeep sent (%v)", err)
				}
			}
		})
	}
}

func valueOrZero[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// checkEchoedKeyType checks the RSTR's wst:KeyType.
func checkEchoedKeyType(t *testing.T, body []byte, keyType string) {
	t.Helper()
	root, err := parseStandalone(body)
	if err != nil {
		t.Fatalf("RSTR: %v", err)
	}
	kts := root.find(nsWST, "KeyType")
	if len(kts) != 1 || strings.TrimSpace(kts[0].Text) != nsWST+"/"+keyType {
		var got []string
		for _, k := range kts {
			got = append(got, k.Text)
		}
		t.Errorf("RSTR KeyType = %q, want [%s/%s]", got, nsWST, keyType)
	}
}

// checkProofKeyDecrypts checks that the EncryptedKey of a holder-of-key
// confirmation states the RP's key transport and decrypts with the RP's
// private key, and only with it, to exactly proof: in openssl pkeyutl, and
// in xmlsec1 where it can (AES key sizes, the rsa-oaep-mgf1p it knows).
func checkProofKeyDecrypts(t *testing.T, xmlsec1, openssl, rpKey, otherKey string, ek *node, kt keyTransport, proof []byte) {
	t.Helper()
	dir := t.TempDir()
	ems := childElems(ek, xencNS, "EncryptionMethod")
	if len(ems) != 1 {
		t.Fatalf("EncryptedKey has %d EncryptionMethod elements", len(ems))
	}
	alg, digest := ems[0].attr("Algorithm"), childAlgorithm(ems[0], dsigNS, "DigestMethod")
	if alg != kt.uri {
		t.Errorf("the proof key's EncryptedKey algorithm = %q, want %q (--key-transport %s)", alg, kt.uri, kt.name)
	}
	cv, err := onlyElem(ek, xencNS, "CipherValue")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := b64Text(cv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := opensslOAEPDecrypt(openssl, dir, rpKey, wrapped, kt.oaepMD, kt.mgf1MD)
	if err != nil {
		t.Fatalf("the RP key does not unwrap the proof key: %v", err)
	}
	if !bytes.Equal(got, proof) {
		t.Errorf("the proof key encrypted for the RP is\n%x\nbut the client's proof key is\n%x", got, proof)
	}
	if _, err := opensslOAEPDecrypt(openssl, dir, otherKey, wrapped, kt.oaepMD, kt.mgf1MD); err == nil {
		t.Error("another RSA key unwraps the proof key")
	}

	dataAlg := map[int]string{16: "aes128-cbc", 24: "aes192-cbc", 32: "aes256-cbc"}[len(proof)]
	if !kt.xmlsec1 || dataAlg == "" {
		return // no AES key of this size, or a key transport xmlsec1 1.2.37 does not know
	}
	// What the client would send the RP: data encrypted with its proof key,
	// its key the EncryptedKey from the assertion. xmlsec1 gets the data
	// back only if the EncryptedKey holds that same proof key.
	msg := make([]byte, 24)
	_, _ = rand.Read(msg)
	msg = []byte(fmt.Sprintf("proof of possession %x", msg))
	block, err := aes.NewCipher(proof)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(msg)%aes.BlockSize
	padded := append(bytes.Clone(msg), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := make([]byte, aes.BlockSize+len(padded))
	_, _ = rand.Read(ct[:aes.BlockSize])
	cipher.NewCBCEncrypter(block, ct[:aes.BlockSize]).CryptBlocks(ct[aes.BlockSize:], padded)
	digestEl := ""
	if digest != "" {
		digestEl = `<ds:DigestMethod Algorithm="` + digest + `"/>`
	}
	doc := `<xenc:EncryptedData xmlns:xenc="` + xencNS + `" xmlns:ds="` + dsigNS + `">` +
		`<xenc:EncryptionMethod Algorithm="` + xencNS + dataAlg + `"/>` +
		`<ds:KeyInfo><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="` + alg + `">` + digestEl + `</xenc:EncryptionMethod>` +
		`<xenc:CipherData><xenc:CipherValue>` + base64.StdEncoding.EncodeToString(wrapped) + `</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>` +
		`<xenc:CipherData><xenc:CipherValue>` + base64.StdEncoding.EncodeToString(ct) + `</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>`
	plain, out, command, err := xmlsec1Decrypt(xmlsec1, dir, []byte(doc), "--privkey-pem", rpKey)
	if err != nil {
		t.Fatalf("`%s` (data encrypted with the client's proof key, keyed by the assertion's EncryptedKey) failed: %v\n%s", command, err, xmlsec1Errors(out))
	}
	if !bytes.Equal(plain, msg) {
		t.Errorf("xmlsec1 decrypted %q, want %q: the EncryptedKey does not hold the client's proof key", plain, msg)
	}
	if _, _, _, err := xmlsec1Decrypt(xmlsec1, dir, []byte(doc), "--privkey-pem", otherKey); err == nil {
		t.Error("xmlsec1 decrypts with another RSA key too")
	}
}

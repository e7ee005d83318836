package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/wstrust"
)

const (
	nsS    = `xmlns:s="http://www.w3.org/2003/05/soap-envelope"`
	nsWSSE = `xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"`
	nsWST  = `xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512"`
)

func TestMaskXMLHidesSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		xml     string
		secrets []string // must be gone
		keep    []string // must stay
	}{
		{"a PasswordText is masked, the user name kept",
			`<s:Envelope ` + nsS + ` ` + nsWSSE + `><s:Header><wsse:Security><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password Type="#PasswordText">Secret#123</wsse:Password></wsse:UsernameToken></wsse:Security></s:Header><s:Body/></s:Envelope>`,
			[]string{"Secret#123"}, []string{"alice", "PasswordText"}},
		{"a password in CDATA is masked",
			`<s:Envelope ` + nsS + ` ` + nsWSSE + `><s:Header><wsse:Security><wsse:UsernameToken><wsse:Password><![CDATA[Cdata#pw]]></wsse:Password></wsse:UsernameToken></wsse:Security></s:Header><s:Body/></s:Envelope>`,
			[]string{"Cdata#pw"}, nil},
		{"a PasswordDigest and its nonce are masked",
			`<s:Envelope ` + nsS + ` ` + nsWSSE + `><s:Header><wsse:Security><wsse:UsernameToken><wsse:Password Type="#PasswordDigest">ZGlnZXN0ZGlnZXN0</wsse:Password><wsse:Nonce>bm9uY2Vub25jZQ==</wsse:Nonce></wsse:UsernameToken></wsse:Security></s:Header><s:Body/></s:Envelope>`,
			[]string{"ZGlnZXN0ZGlnZXN0", "bm9uY2Vub25jZQ=="}, nil},
		{"client entropy is masked",
			`<s:Envelope ` + nsS + ` ` + nsWST + `><s:Body><wst:RequestSecurityToken><wst:Entropy><wst:BinarySecret>c2VjcmV0a2V5</wst:BinarySecret></wst:Entropy></wst:RequestSecurityToken></s:Body></s:Envelope>`,
			[]string{"c2VjcmV0a2V5"}, nil},
		{"an issued token, its signature and the proof key are masked",
			`<s:Envelope ` + nsS + ` ` + nsWST + `><s:Body><wst:RequestSecurityTokenResponse><wst:RequestedSecurityToken><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject>alice@corp</saml:Subject><ds:SignatureValue xmlns:ds="http://www.w3.org/2000/09/xmldsig#">U0lHTkFUVVJF</ds:SignatureValue></saml:Assertion></wst:RequestedSecurityToken><wst:RequestedProofToken><wst:BinarySecret>cHJvb2ZrZXk=</wst:BinarySecret></wst:RequestedProofToken><wst:Lifetime>L</wst:Lifetime></wst:RequestSecurityTokenResponse></s:Body></s:Envelope>`,
			[]string{"alice@corp", "U0lHTkFUVVJF", "cHJvb2ZrZXk="}, []string{"Lifetime"}},
		{"an encrypted token's cipher values are masked",
			`<s:Envelope ` + nsS + ` ` + nsWST + `><s:Body><wst:RequestSecurityTokenResponse><wst:RequestedSecurityToken><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:CipherData><xenc:CipherValue>Q0lQSEVS</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></wst:RequestedSecurityToken></wst:RequestSecurityTokenResponse></s:Body></s:Envelope>`,
			[]string{"Q0lQSEVS"}, nil},
		{"a token sent for validation is masked",
			`<s:Envelope ` + nsS + ` ` + nsWST + `><s:Body><wst:RequestSecurityToken><wst:ValidateTarget><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"><Subject>bob@corp</Subject></Assertion></wst:ValidateTarget></wst:RequestSecurityToken></s:Body></s:Envelope>`,
			[]string{"bob@corp"}, []string{"ValidateTarget"}},
		{"a binary security token is masked",
			`<s:Envelope ` + nsS + ` ` + nsWSSE + `><s:Header><wsse:Security><wsse:BinarySecurityToken>TUlJQ2VydA==</wsse:BinarySecurityToken></wsse:Security></s:Header><s:Body/></s:Envelope>`,
			[]string{"TUlJQ2VydA=="}, nil},
		{"a message that is not XML is not shown", `password=Plain#pw&user=alice`, []string{"Plain#pw", "alice"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := MaskXML([]byte(tc.xml))
			for _, s := range tc.secrets {
				if strings.Contains(out, s) {
					t.Errorf("%q is visible:\n%s", s, out)
				}
			}
			for _, s := range tc.keep {
				if !strings.Contains(out, s) {
					t.Errorf("%q is gone:\n%s", s, out)
				}
			}
			if !strings.Contains(out, Mask) {
				t.Errorf("no mask:\n%s", out)
			}
		})
	}
}

func TestTracerKeepsTheLastExchangesOnlyWhileEnabled(t *testing.T) {
	tr := NewTracer()
	x := func(i int) wstrust.Exchange {
		return wstrust.Exchange{Time: time.Unix(int64(i), 0), Endpoint: fmt.Sprintf("/e%d", i), Request: []byte("<a/>"), Status: 200}
	}
	tr.Record(x(0))
	if len(tr.List()) != 0 || tr.Enabled() {
		t.Fatal("a new tracer records")
	}
	tr.SetEnabled(true)
	if err := tr.SetCapacity(0); err == nil {
		t.Fatal("capacity 0 accepted")
	}
	if err := tr.SetCapacity(3); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		tr.Record(x(i))
	}
	got := tr.List()
	if len(got) != 3 || got[0].Endpoint != "/e5" || got[2].Endpoint != "/e3" {
		t.Fatalf("kept %+v", got)
	}
	if err := tr.SetCapacity(2); err != nil || len(tr.List()) != 2 || tr.List()[1].Endpoint != "/e4" {
		t.Fatalf("shrinking kept %+v", tr.List())
	}
	tr.SetEnabled(false)
	if len(tr.List()) != 0 {
		t.Fatal("turning the tracer off kept exchanges")
	}
}

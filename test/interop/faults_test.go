package interop

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"
)

// soapVersions runs each fault case in both envelopes: the fault must come
// back in the version of the request (for SOAP 1.2 with a Sender code and
// HTTP 400, for SOAP 1.1 with HTTP 500, unless the case says otherwise).
var soapVersions = []struct {
	name   string
	soap12 bool
}{{"SOAP 1.1", false}, {"SOAP 1.2", true}}

// faultCase is one request the STS must refuse. Each malicious payload rides
// on an otherwise valid request, so that only the guard under test can stop
// it: if the guard broke, the server would issue a token and the case fails.
type faultCase struct {
	name string
	// request returns the request to send; send posts it (default: once).
	request func(soap12 bool) rst
	raw     func(soap12 bool) []byte // overrides request when set
	send    func(t *testing.T, srv *server, body []byte, h http.Header) (int, []byte)
	// codes are the accepted most specific fault codes, "{space}local";
	// sender means a bare Client (1.1) / Sender (1.2) fault, no subcode.
	codes  []string
	status int // 0: 500 for SOAP 1.1, 400 for SOAP 1.2
}

func wsse(local string) string { return "{" + nsWSSE + "}" + local }
func wst(local string) string  { return "{" + nsWST + "}" + local }

const sender = "{" + nsSOAP12 + "}Sender"

func TestFaultsAreSOAPFaultsAndTheServerKeepsServing(t *testing.T) {
	srv := sharedServer(t)
	good := func(u user) func(bool) rst {
		return func(soap12 bool) rst { return rst{SOAP12: soap12, User: u.Name, Password: u.Password} }
	}
	deep := strings.Repeat("<x:n>", 10000) + strings.Repeat("</x:n>", 10000)
	cases := []faultCase{
		{
			name: "a wrong password is refused with wsse:FailedAuthentication",
			request: func(soap12 bool) rst {
				return rst{SOAP12: soap12, User: textUser.Name, Password: textUser.Password + "x"}
			},
			codes: []string{wsse("FailedAuthentication")},
		},
		{
			name: "an unknown user is refused with wsse:FailedAuthentication",
			request: func(soap12 bool) rst {
				return rst{SOAP12: soap12, User: "nobody-" + textUser.Name, Password: textUser.Password}
			},
			codes: []string{wsse("FailedAuthentication")},
		},
		{
			name:    "a user without the admin role is refused with wst:RequestFailed",
			request: good(noRoleUser),
			codes:   []string{wst("RequestFailed")},
		},
		{
			name: "an expired Timestamp is refused with wsse:MessageExpired",
			request: func(soap12 bool) rst {
				r := good(textUser)(soap12)
				// Older than any clock-skew allowance.
				r.Timestamp = &[2]time.Time{time.Now().Add(-40 * time.Minute), time.Now().Add(-35 * time.Minute)}
				return r
			},
			codes: []string{wsse("MessageExpired")},
		},
		{
			name: "a replayed PasswordDigest nonce is refused the second time",
			request: func(soap12 bool) rst {
				return rst{SOAP12: soap12, User: digestUser.Name, Password: digestUser.Password, Digest: true}
			},
			send: func(t *testing.T, srv *server, body []byte, h http.Header) (int, []byte) {
				status, resp, err := post(srv.STS, body, h)
				if err != nil || status != 200 {
					t.Fatalf("first use of the nonce: HTTP %d %v\n%s", status, err, resp)
				}
				status, resp, err = post(srv.STS, body, h)
				if err != nil {
					t.Fatal(err)
				}
				return status, resp
			},
			// WS-Security names no replay fault; either is a correct refusal.
			codes: []string{wsse("InvalidSecurity"), wsse("FailedAuthentication")},
		},
		{
			name: "an unknown TokenType is refused with wst:InvalidRequest",
			request: func(soap12 bool) rst {
				r := good(textUser)(soap12)
				r.TokenType = "urn:example:no-such-token-type"
				return r
			},
			codes: []string{wst("InvalidRequest")},
		},
		{
			name: "malformed XML gets a Sender fault",
			raw: func(soap12 bool) []byte {
				b := good(textUser)(soap12).envelope()
				return b[:len(b)-20] // cut inside the closing tags
			},
			codes: []string{sender},
		},
		{
			name: "a DOCTYPE gets a Sender fault and its entity is never expanded",
			raw: func(soap12 bool) []byte {
				r := good(textUser)(soap12)
				r.Prolog = `<!DOCTYPE s:Envelope [<!ENTITY rp "urn:interop:from-a-dtd">]>`
				// The entity reference must stay unescaped to be one.
				return bytes.Replace(r.envelope(), []byte("urn:interop:rp"), []byte("&rp;"), 1)
			},
			codes: []string{sender},
		},
		{
			name: "a 10 MB body gets HTTP 413 and a Sender fault",
			raw: func(soap12 bool) []byte {
				r := good(textUser)(soap12)
				r.Extra = `<x:padding xmlns:x="urn:interop:ext">` + strings.Repeat("A", 10<<20) + `</x:padding>`
				return r.envelope()
			},
			codes:  []string{sender},
			status: http.StatusRequestEntityTooLarge,
		},
		{
			name: "10,000-deep nesting gets a Sender fault",
			raw: func(soap12 bool) []byte {
				r := good(textUser)(soap12)
				r.Extra = `<x:deep xmlns:x="urn:interop:ext">` + deep + `</x:deep>`
				return r.envelope()
			},
			codes: []string{sender},
		},
	}

	for _, c := range cases {
		for _, v := range soapVersions {
			t.Run(c.name+" over "+v.name, func(t *testing.T) {
				var body []byte
				var h http.Header
				switch {
				case c.raw != nil:
					body = c.raw(v.soap12)
					h = rst{SOAP12: v.soap12}.contentType()
				default:
					r := c.request(v.soap12)
					body, h = r.envelope(), r.contentType()
				}
				var status int
				var resp []byte
				if c.send != nil {
					status, resp = c.send(t, srv, body, h)
				} else {
					var err error
					status, resp, err = post(srv.STS, body, h)
					if err != nil {
						t.Fatalf("POST: %v", err)
					}
				}
				checkFault(t, v.soap12, status, resp, c.status, c.codes)
				// The refusal must not have hurt the server.
				assertServes(t, srv, v.soap12)
			})
		}
	}
}

// TestUnknownUserAndWrongPasswordLookTheSame: the fault must not tell an
// attacker which user names exist, whatever the password type. (For
// PasswordDigest the known user is one that allows digest: a wrong digest
// for it must look like a digest for a name that does not exist.)
func TestUnknownUserAndWrongPasswordLookTheSame(t *testing.T) {
	srv := sharedServer(t)
	for _, v := range soapVersions {
		for _, p := range []struct {
			name   string
			known  user
			digest bool
		}{
			{"PasswordText", textUser, false},
			{"PasswordDigest", digestUser, true},
		} {
			t.Run("over "+v.name+" with "+p.name+" an unknown user gets exactly the wrong-password fault", func(t *testing.T) {
				var got []fault
				var statuses []int
				for _, r := range []rst{
					{SOAP12: v.soap12, User: p.known.Name, Password: "wrong-" + p.known.Password, Digest: p.digest},
					{SOAP12: v.soap12, User: "no-such-user-" + p.known.Name, Password: p.known.Password, Digest: p.digest},
				} {
					status, resp, err := post(srv.STS, r.envelope(), r.contentType())
					if err != nil {
						t.Fatal(err)
					}
					f, err := parseFault(resp)
					if err != nil {
						t.Fatalf("HTTP %d: %v\n%s", status, err, resp)
					}
					got = append(got, f)
					statuses = append(statuses, status)
				}
				if !got[0].Is(nsWSSE, "FailedAuthentication") {
					t.Errorf("wrong password: %v, want wsse:FailedAuthentication", got[0])
				}
				if got[0] != got[1] || statuses[0] != statuses[1] {
					t.Errorf("the faults differ, so they reveal which user exists:\nwrong password: HTTP %d %v\nunknown user:   HTTP %d %v",
						statuses[0], got[0], statuses[1], got[1])
				}
			})
		}
	}
}

func checkFault(t *testing.T, soap12 bool, status int, resp []byte, wantStatus int, codes []string) {
	t.Helper()
	if wantStatus == 0 {
		wantStatus = 500
		if soap12 {
			wantStatus = 400
		}
	}
	if status != wantStatus {
		t.Errorf("HTTP status %d, want %d", status, wantStatus)
	}
	f, err := parseFault(resp)
	if err != nil {
		t.Fatalf("HTTP %d: %v\n%.2000s", status, err, resp)
	}
	wantNS := nsSOAP11
	if soap12 {
		wantNS = nsSOAP12
	}
	if f.EnvelopeNS != wantNS {
		t.Errorf("fault envelope is %q, want %q", f.EnvelopeNS, wantNS)
	}
	if soap12 && f.Code != xmlName(sender) {
		t.Errorf("SOAP 1.2 fault code %v, want env:Sender (the client's mistake)", f)
	}
	for _, c := range codes {
		n := xmlName(c)
		if c == sender {
			// A bare Sender/Client fault: no subcode.
			if f.Subcode.Local == "" && f.Code == n {
				return
			}
			continue
		}
		if f.Is(n.Space, n.Local) {
			return
		}
	}
	t.Errorf("fault %v, want code %v", f, codes)
}

// xmlName parses "{space}local".
func xmlName(braced string) xml.Name {
	space, local, _ := strings.Cut(strings.TrimPrefix(braced, "{"), "}")
	return xml.Name{Space: space, Local: local}
}

// assertServes checks that a plain good request still gets a token.
func assertServes(t *testing.T, srv *server, soap12 bool) {
	t.Helper()
	r := rst{SOAP12: soap12, User: textUser.Name, Password: textUser.Password, TokenType: tokenSAML20}
	status, resp, err := post(srv.STS, r.envelope(), r.contentType())
	if err != nil {
		t.Fatalf("the server no longer answers: %v", err)
	}
	if status != 200 {
		t.Fatalf("the server no longer issues tokens: HTTP %d\n%.2000s", status, resp)
	}
	if _, _, err := extractToken(resp); err != nil {
		t.Fatalf("the server no longer issues tokens: %v\n%.2000s", err, resp)
	}
}

package interop

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixturesDir holds requests captured from real clients (zeep built from a
// WSDL and raw, SOAP 1.1/1.2, PasswordText/Digest; msal for WS-Trust 1.3 and
// 2005/02): the body as NAME.xml, the request line and headers as NAME.http.
const fixturesDir = "testdata/wstrust-requests"

// TestReplayedClientCapturesAreRefusedWhenStale replays the captured requests
// byte for byte, with their own Content-Type and SOAPAction headers. Their
// timestamps are long past, so every request that carries one must be
// refused with wsse:MessageExpired — a freshness decision, which the server
// can only reach after parsing the whole request, so it also proves these
// real-world messages parse. The PasswordText captures carry no timestamp at
// all: nothing in them can go stale, so they must simply get a token.
func TestReplayedClientCapturesAreRefusedWhenStale(t *testing.T) {
	srv := sharedServer(t)
	files, err := filepath.Glob(filepath.Join(fixturesDir, "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s (%v)", fixturesDir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		h, err := fixtureHeaders(strings.TrimSuffix(file, ".xml") + ".http")
		if err != nil {
			t.Fatal(err)
		}
		soap12 := bytes.Contains(body, []byte(nsSOAP12))
		stamped := bytes.Contains(body, []byte(":Timestamp"))
		verb := "is refused as stale with wsse:MessageExpired"
		if !stamped {
			verb = "has no Timestamp and gets a token"
		}
		t.Run("the captured "+name+" request "+verb, func(t *testing.T) {
			status, resp, err := post(srv.STS, body, h)
			if err != nil {
				t.Fatal(err)
			}
			if !stamped {
				if status != 200 {
					t.Fatalf("HTTP %d, want 200 and a token:\n%.2000s", status, resp)
				}
				if _, _, err := extractToken(resp); err != nil {
					t.Fatalf("%v\n%.2000s", err, resp)
				}
				return
			}
			checkFault(t, soap12, status, resp, 0, []string{wsse("MessageExpired")})
		})
	}
}

// fixtureHeaders reads the headers of a captured request that decide how the
// server must read it (Content-Type, SOAPAction); the others (Host,
// Content-Length, ...) belong to the original connection.
func fixtureHeaders(file string) (http.Header, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := http.Header{}
	sc := bufio.NewScanner(f)
	sc.Scan() // request line
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k {
		case "Content-Type", "Soapaction":
			h.Set(k, strings.TrimSpace(v))
		}
	}
	return h, sc.Err()
}

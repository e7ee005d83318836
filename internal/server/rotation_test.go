package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/keys"
)

// Rotating to an ECDSA key: new tokens are signed ecdsa-sha256 (r‖s) by the
// new key, and tokens signed by the old RSA key still validate and renew.
func TestSigningKeyRotationToECDSAKeepsOldTokensValid(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
	o := &client.Options{URL: ts.URL + "/services/sts", User: "alice", Password: "Alice#pw1", AppliesTo: "urn:rot"}
	ctx := context.Background()
	_, _, old, err := client.Issue(ctx, http.DefaultClient, o)
	if err != nil {
		t.Fatal(err)
	}
	km := &keys.Manager{Store: ts.Store, Box: ts.Box}
	if _, err := km.Generate(ctx, keys.PurposeSigning, keys.ECDSAP256, "avouch token signing"); err != nil {
		t.Fatal(err)
	}
	if err := ts.reloadRuntime(ctx); err != nil { // what the watcher does within a second
		t.Fatal(err)
	}
	_, _, fresh, err := client.Issue(ctx, http.DefaultClient, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fresh), "xmldsig-more#ecdsa-sha256") {
		t.Fatal("the new token is not signed ecdsa-sha256")
	}
	checkToken(t, ts, fresh, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:rot"})
	for name, tok := range map[string][]byte{"the old RSA token": old, "the new ECDSA token": fresh} {
		_, rstr, err := client.Lifecycle(ctx, http.DefaultClient, o, "Validate", tok, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, reason, _ := client.Status(rstr); !ok {
			t.Fatalf("%s does not validate after rotation: %s", name, reason)
		}
	}
	if _, _, err := client.Lifecycle(ctx, http.DefaultClient, o, "Renew", old, false); err != nil {
		t.Fatalf("the old token does not renew after rotation: %v", err)
	}
}

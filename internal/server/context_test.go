package server

import (
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/client"
)

// The RST Context attribute comes back on the RSTR, escaped, in both
// WS-Trust versions' answers.
func TestTheRSTContextIsEchoed(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
	env, ctype := rst(t, ts.URL+"/services/sts", client.Options{User: "alice", Password: "Alice#pw1"}, func(s string) string {
		return strings.Replace(s, "<wst:RequestSecurityToken>", `<wst:RequestSecurityToken Context="ctx-1 &lt;&amp;&quot;">`, 1)
	})
	r := ts.post(t, "/services/sts", ctype, env)
	if r.Status != 200 {
		t.Fatalf("%d %.300s", r.Status, r.Body)
	}
	if !strings.Contains(r.Body, `<wst:RequestSecurityTokenResponse Context="ctx-1 &lt;&amp;&quot;">`) {
		t.Fatalf("Context not echoed: %.600s", r.Body)
	}
}

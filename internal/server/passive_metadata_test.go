package server

import (
	"github.com/avouch/avouch/internal/config"
	"strings"
	"testing"
)

// FederationMetadata advertises the passive STS, at the public URL.
func TestFederationMetadataAdvertisesThePassiveRequestorEndpoint(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.PublicURL = "https://sts.example.test" })
	st, body := httpGet(t, ts.URL+"/FederationMetadata/2007-06/FederationMetadata.xml")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	i := strings.Index(body, "PassiveRequestorEndpoint")
	if i < 0 {
		t.Fatal("no PassiveRequestorEndpoint")
	}
	if !strings.Contains(body[i:], "https://sts.example.test/passivests</") {
		t.Fatalf("PassiveRequestorEndpoint does not point at /passivests on the public URL: %.300s", body[i:])
	}
}

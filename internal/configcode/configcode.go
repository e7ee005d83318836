// Package configcode is avouch's configuration as code: `avouch export`
// writes the managed configuration (resident IdP and runtime settings,
// security policy, role and claim catalogues, trust store, service
// providers, secondary user stores, users) as one YAML document, and
// `avouch apply -f` makes the database match such a document, idempotently.
//
// Secrets are never written in clear: users carry their argon2id password
// hash, and the bind passwords of user stores and the PasswordDigest secrets
// of users are written sealed under the master key (base64), which only a
// database with the same master key can open. A hand-written file may give
// an initial password or a bind password in clear instead; apply hashes or
// seals it.
package configcode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/registry"
)

// Version is the document format version.
const Version = 1

// Document is one avouch.yaml.
type Document struct {
	Version int `yaml:"version"`
	// ResidentIdP holds the resident identity provider's settings (only those
	// set: the rest keep the server's configuration).
	ResidentIdP *console.ResidentIdP `yaml:"resident_idp,omitempty"`
	// SecurityPolicy is who may request tokens.
	SecurityPolicy *console.Policy `yaml:"security_policy,omitempty"`
	// RuntimeSettings are other runtime settings stored in the database
	// (`avouch config set` keys), as strings.
	RuntimeSettings map[string]string `yaml:"runtime_settings,omitempty"`
	// Roles and Claims are the catalogues the console offers.
	Roles  []console.Role  `yaml:"roles,omitempty"`
	Claims []console.Claim `yaml:"claims,omitempty"`
	// TrustStore holds the relying parties' certificates by alias.
	TrustStore       []Certificate               `yaml:"trust_store,omitempty"`
	ServiceProviders []*registry.ServiceProvider `yaml:"service_providers,omitempty"`
	UserStores       []console.UserStore         `yaml:"user_stores,omitempty"`
	Users            []User                      `yaml:"users,omitempty"`
}

// Certificate is a trust-store entry: PEM inline, or a file (PEM or DER;
// a relative path is relative to the document's directory).
type Certificate struct {
	Alias string `yaml:"alias"`
	PEM   string `yaml:"pem,omitempty"`
	File  string `yaml:"file,omitempty"`
}

// User is a user of the embedded (PRIMARY) store.
type User struct {
	Name string `yaml:"name"`
	// PasswordHash is the PHC argon2id hash (what export writes).
	PasswordHash string `yaml:"password_hash,omitempty"`
	// Password is an initial password in clear (hand-written files only):
	// set when the user is created, never changed on an existing user.
	Password string `yaml:"password,omitempty"`
	// AllowDigest with Password keeps the password sealed for WS-Security
	// PasswordDigest.
	AllowDigest bool `yaml:"allow_digest,omitempty"`
	// SealedDigestSecret is the PasswordDigest secret sealed under the
	// master key, base64 (what export writes for digest-capable users).
	SealedDigestSecret string            `yaml:"sealed_digest_secret,omitempty"`
	Roles              []string          `yaml:"roles,omitempty"`
	Claims             map[string]string `yaml:"claims,omitempty"`
	Disabled           bool              `yaml:"disabled,omitempty"`
}

const header = `# avouch configuration (avouch export; apply with: avouch apply -f FILE)
# Secrets are not in clear: password_hash is argon2id, sealed_* values are
# sealed under the master key of the database they came from.
`

// Marshal writes the document as YAML (deterministic: same configuration,
// same bytes).
func (d *Document) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Parse reads a document; unknown keys are errors.
func Parse(data []byte) (*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var d Document
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the document is empty")
		}
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("one YAML document expected")
	}
	if d.Version != Version {
		return nil, fmt.Errorf("version: %d is not supported (this avouch reads version %d)", d.Version, Version)
	}
	return &d, nil
}

var phcArgon2id = regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`)

package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/keys/keystore"
	"github.com/avouch/avouch/internal/storage"
)

// TrustedCert is a trust-store entry as the API shows it.
type TrustedCert struct {
	Alias    string    `json:"alias"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	SHA256   string    `json:"sha256"`
	UsedBy   []string  `json:"used_by,omitempty"`
	PEM      string    `json:"pem,omitempty"`
}

func certView(alias string, c *x509.Certificate) TrustedCert {
	sum := sha256.Sum256(c.Raw)
	return TrustedCert{Alias: alias, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotAfter: c.NotAfter.UTC(),
		SHA256: hex.EncodeToString(sum[:])}
}

// ValidateAlias checks a trust-store alias.
func ValidateAlias(field, alias string) error {
	if alias == "" || strings.TrimSpace(alias) != alias || len(alias) > 128 {
		return fieldErr(field, "an alias is 1-128 characters without surrounding spaces")
	}
	for _, r := range alias {
		if unicode.IsControl(r) {
			return fieldErr(field, "an alias must not contain control characters")
		}
	}
	return nil
}

// aliasUsers names the service providers that use alias.
func (h *Handler) aliasUsers(ctx context.Context, alias string) ([]string, error) {
	if _, err := h.o.Registry.Reload(ctx); err != nil {
		return nil, err
	}
	var out []string
	for _, sp := range h.o.Registry.List() {
		if (sp.WSTrust != nil && sp.WSTrust.Token.CertAlias == alias) || (sp.Passive != nil && sp.Passive.Token.CertAlias == alias) {
			out = append(out, sp.Name)
		}
	}
	return out, nil
}

func (h *Handler) trusted(ctx context.Context) ([]TrustedCert, error) {
	list, err := h.o.Store.ListCertificates(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := h.o.Registry.Reload(ctx); err != nil {
		return nil, err
	}
	used := map[string][]string{}
	for _, sp := range h.o.Registry.List() {
		if sp.WSTrust != nil && sp.WSTrust.Token.CertAlias != "" {
			used[sp.WSTrust.Token.CertAlias] = append(used[sp.WSTrust.Token.CertAlias], sp.Name)
		}
		if sp.Passive != nil && sp.Passive.Token.CertAlias != "" && (sp.WSTrust == nil || sp.WSTrust.Token.CertAlias != sp.Passive.Token.CertAlias) {
			used[sp.Passive.Token.CertAlias] = append(used[sp.Passive.Token.CertAlias], sp.Name)
		}
	}
	out := []TrustedCert{}
	for _, e := range list {
		c, err := keys.ParseCertPEM(e.PEM)
		if err != nil {
			out = append(out, TrustedCert{Alias: e.Alias, Subject: "(unreadable certificate)"})
			continue
		}
		v := certView(e.Alias, c)
		v.UsedBy = used[e.Alias]
		out = append(out, v)
	}
	return out, nil
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	signing, err := SigningKeys(ctx, h.o.Store)
	if err != nil {
		return err
	}
	trusted, err := h.trusted(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"signing": signing, "trusted": trusted})
	return nil
}

func (h *Handler) listTrusted(w http.ResponseWriter, r *http.Request) error {
	trusted, err := h.trusted(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"trusted": trusted})
	return nil
}

func (h *Handler) getTrusted(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	ctx := r.Context()
	e, err := h.o.Store.GetCertificate(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("certificate " + quote(alias))
	} else if err != nil {
		return err
	}
	c, err := keys.ParseCertPEM(e.PEM)
	if err != nil {
		return err
	}
	v := certView(alias, c)
	v.PEM = string(e.PEM)
	if v.UsedBy, err = h.aliasUsers(ctx, alias); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// keystoreUpload is a keystore or certificate file: PEM text, or any
// supported format (PEM, DER, PKCS#12, JKS/JCEKS) base64-encoded.
type keystoreUpload struct {
	Alias       string `json:"alias,omitempty"`
	Content     string `json:"content,omitempty"` // base64 of the file
	PEM         string `json:"pem,omitempty"`
	Password    string `json:"password,omitempty"`
	KeyPassword string `json:"key_password,omitempty"`
	Entry       string `json:"entry,omitempty"` // one entry of a multi-entry keystore
	Replace     bool   `json:"replace,omitempty"`
	Overlap     string `json:"overlap,omitempty"` // signing import: how long the old key stays
}

func (u *keystoreUpload) load() ([]keystore.Entry, error) {
	var raw []byte
	switch {
	case u.Content != "" && u.PEM != "":
		return nil, fieldErr("content", "give the file as content (base64) or as pem, not both")
	case u.PEM != "":
		raw = []byte(u.PEM)
	case u.Content != "":
		s := strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, u.Content)
		var err error
		if raw, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fieldErr("content", "not base64")
		}
	default:
		return nil, fieldErr("content", "upload a certificate or keystore file (PEM, DER, PKCS#12 or JKS)")
	}
	entries, err := keystore.Load(raw, u.Password, u.KeyPassword)
	switch {
	case errors.Is(err, keystore.ErrWrongPassword):
		return nil, fieldErr("password", "wrong keystore password")
	case errors.Is(err, keystore.ErrWrongKeyPassword):
		return nil, fieldErr("key_password", "wrong key password")
	case err != nil:
		return nil, fieldErr("content", "%s", strings.TrimPrefix(err.Error(), "keystore: "))
	}
	return entries, nil
}

func (h *Handler) uploadTrusted(w http.ResponseWriter, r *http.Request) error {
	var in keystoreUpload
	if err := decode(w, r, &in, 16<<20); err != nil {
		return err
	}
	if in.Alias != "" {
		if err := ValidateAlias("alias", in.Alias); err != nil {
			return err
		}
	}
	entries, err := in.load()
	if err != nil {
		return err
	}
	if in.Entry != "" {
		var picked []keystore.Entry
		for _, e := range entries {
			if strings.EqualFold(e.Alias, in.Entry) {
				picked = append(picked, e)
			}
		}
		if len(picked) == 0 {
			names := make([]string, len(entries))
			for i, e := range entries {
				names[i] = e.Alias
			}
			return fieldErr("entry", "no entry %q in the keystore (entries: %s)", in.Entry, strings.Join(names, ", "))
		}
		entries = picked
	}
	if in.Alias != "" && len(entries) > 1 {
		return fieldErr("alias", "the keystore holds %d entries: choose one with entry, or leave alias empty to keep theirs", len(entries))
	}
	ctx := r.Context()
	var out []TrustedCert
	for _, e := range entries {
		alias := e.Alias
		if in.Alias != "" {
			alias = in.Alias
		}
		if err := ValidateAlias("alias", alias); err != nil {
			return err
		}
		if !in.Replace {
			if _, err := h.o.Store.GetCertificate(ctx, alias); err == nil {
				return errStatus(http.StatusConflict, "alias", "the trust store already has "+quote(alias)+": choose another alias or set replace")
			} else if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
		out = append(out, certView(alias, e.Cert))
	}
	for i, e := range entries {
		if err := h.o.Trust.Add(ctx, out[i].Alias, e.Cert); err != nil {
			return err
		}
		h.audit(ctx, callerOf(ctx).Name, "truststore.add", out[i].Alias, "subject="+out[i].Subject+" sha256="+out[i].SHA256)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"trusted": out})
	return nil
}

func (h *Handler) deleteTrusted(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	ctx := r.Context()
	users, err := h.aliasUsers(ctx, alias)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errStatus(http.StatusConflict, "alias", fmt.Sprintf("certificate %s is used by %s: change them first", quote(alias), strings.Join(users, ", ")))
	}
	if err := h.o.Trust.Delete(ctx, alias); errors.Is(err, storage.ErrNotFound) {
		return notFound("certificate " + quote(alias))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "truststore.delete", alias, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// overlap parses a rotation overlap: at least the longest token lifetime,
// so a token signed with the old key stays verifiable until it expires.
func (h *Handler) overlap(ctx context.Context, s string) (time.Duration, error) {
	cfg, _, err := h.effective(ctx)
	if err != nil {
		return 0, err
	}
	min := time.Duration(cfg.MaxTokenLifetime)
	if s == "" {
		if min < 24*time.Hour {
			return 24 * time.Hour, nil
		}
		return min, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fieldErr("overlap", "%q is not a duration (e.g. 24h)", s)
	}
	if d < min || d > 90*24*time.Hour {
		return 0, fieldErr("overlap", "must be between max_token_lifetime (%s) and 2160h, so tokens signed with the old key stay verifiable until they expire", min)
	}
	return d, nil
}

type rotateInput struct {
	Overlap string `json:"overlap,omitempty"`
}

func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) error {
	var in rotateInput
	if r.ContentLength != 0 {
		if err := decode(w, r, &in, 4<<10); err != nil {
			return err
		}
	}
	ctx := r.Context()
	ov, err := h.overlap(ctx, in.Overlap)
	if err != nil {
		return err
	}
	km := &keys.Manager{Store: h.o.Store, Box: h.o.Box, Now: h.o.Now}
	rot, err := Rotate(ctx, km, ov, h.o.Now())
	if err != nil {
		return err
	}
	if h.o.ApplyRuntime != nil {
		if err := h.o.ApplyRuntime(ctx); err != nil {
			return err
		}
	}
	h.audit(ctx, callerOf(ctx).Name, "key.rotate", rot.New.ID,
		fmt.Sprintf("new signing key sha256=%s; retiring %s at %s", rot.New.SHA256, strings.Join(rot.Retiring, ", "), rot.RetireAt.Format(time.RFC3339)))
	writeJSON(w, http.StatusCreated, rot)
	return nil
}

func (h *Handler) importSigningKey(w http.ResponseWriter, r *http.Request) error {
	var in keystoreUpload
	if err := decode(w, r, &in, 16<<20); err != nil {
		return err
	}
	if in.Alias != "" || in.Replace {
		return fieldErr("alias", "a signing key has no alias: name the keystore entry with entry")
	}
	ctx := r.Context()
	ov, err := h.overlap(ctx, in.Overlap)
	if err != nil {
		return err
	}
	entries, err := in.load()
	if err != nil {
		return err
	}
	e, err := keystore.FindSigner(entries, in.Entry)
	if err != nil {
		return fieldErr("entry", "%s", strings.TrimPrefix(err.Error(), "keystore: "))
	}
	cfg, _, err := h.effective(ctx)
	if err != nil {
		return err
	}
	rsaAlg := strings.HasPrefix(cfg.SignatureAlgorithm, "rsa-") || strings.Contains(cfg.SignatureAlgorithm, "#rsa-")
	switch e.Key.(type) {
	case *rsa.PrivateKey:
		if !rsaAlg {
			return fieldErr("content", "an RSA key cannot sign with signature_algorithm %s: change the algorithm first", cfg.SignatureAlgorithm)
		}
	case *ecdsa.PrivateKey:
		if rsaAlg {
			return fieldErr("content", "an EC key cannot sign with signature_algorithm %s: set ecdsa-sha256 first", cfg.SignatureAlgorithm)
		}
	default:
		return fieldErr("content", "only RSA and EC (P-256) keys can sign tokens")
	}
	before, err := h.o.Store.ListKeys(ctx, keys.PurposeSigning)
	if err != nil {
		return err
	}
	km := &keys.Manager{Store: h.o.Store, Box: h.o.Box, Now: h.o.Now}
	kp, err := km.Put(ctx, keys.PurposeSigning, e.Key, e.Cert.Raw, true)
	if err != nil {
		return err
	}
	var old []string
	for _, k := range before {
		if k.Active {
			old = append(old, k.ID)
		}
	}
	at := h.o.Now().UTC().Add(ov).Truncate(time.Second)
	if err := ScheduleRetirement(ctx, h.o.Store, old, at); err != nil {
		return err
	}
	if h.o.ApplyRuntime != nil {
		if err := h.o.ApplyRuntime(ctx); err != nil {
			return err
		}
	}
	v := certView(kp.ID, kp.Cert)
	h.audit(ctx, callerOf(ctx).Name, "key.import", kp.ID, "imported signing key "+e.Alias+" sha256="+v.SHA256)
	writeJSON(w, http.StatusCreated, Rotation{New: SigningKey{ID: kp.ID, Active: true, Subject: v.Subject, NotAfter: v.NotAfter,
		Algorithm: kp.Cert.PublicKeyAlgorithm.String(), SHA256: v.SHA256, Created: h.o.Now().UTC()}, Retiring: append([]string{}, old...), RetireAt: at})
	return nil
}

// PEMOf encodes a certificate.
func PEMOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
)

// SettingPrefix marks runtime settings in the settings table.
const SettingPrefix = "config."

// StoredSettings returns the runtime settings stored in the database.
func StoredSettings(ctx context.Context, st interface {
	ListSettings(context.Context) (map[string]string, error)
}) (map[string]string, error) {
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	return configSettings(all), nil
}

func configSettings(all map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, SettingPrefix) {
			out[strings.TrimPrefix(k, SettingPrefix)] = v
		}
	}
	return out
}

func fingerprint(m map[string]string) [32]byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, m[k])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// reloadRuntime applies the stored runtime settings (and the signing keys in
// storage) to the core. Every node runs it at start and whenever the stored
// settings change, so a change made through one node is in force on all of
// them within the poll interval.
func (s *Server) reloadRuntime(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	stored, err := StoredSettings(ctx, s.Store)
	if err != nil {
		return fmt.Errorf("read stored settings: %w", err)
	}
	cfg, err := s.Config.WithStored(stored)
	if err != nil {
		return fmt.Errorf("stored settings: %w", err)
	}
	sigAlg, _ := config.SignatureAlgorithmURI(cfg.SignatureAlgorithm)
	digAlg, _ := config.DigestAlgorithmURI(cfg.DigestAlgorithm)
	km := &keys.Manager{Store: s.Store, Box: s.Box}
	kp, err := km.Active(ctx, keys.PurposeSigning, keys.Algorithm(cfg.SigningKeyAlgorithm), "avouch token signing")
	if err != nil {
		return err
	}
	if _, isEC := kp.Signer.(*ecdsa.PrivateKey); isEC {
		// signature_algorithm chooses among RSA algorithms; an ECDSA key
		// signs ecdsa-sha256, the one ECDSA algorithm we offer.
		sigAlg = saml.AlgECDSASHA256
	} else if sigAlg == saml.AlgECDSASHA256 {
		sigAlg = saml.AlgRSASHA256
	}
	signer, err := saml.NewSigner(kp.Signer, kp.Cert, sigAlg, digAlg)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", kp.ID, err)
	}
	certs, err := keys.SigningCerts(ctx, s.Store)
	if err != nil {
		return err
	}
	tokenType, _ := config.TokenTypeURI(cfg.DefaultTokenType)
	s.Core.SetConfig(sts.Config{
		Issuer:             cfg.Issuer,
		DefaultLifetime:    time.Duration(cfg.TokenLifetime),
		MaxLifetime:        time.Duration(cfg.MaxTokenLifetime),
		ClockSkew:          time.Duration(cfg.ClockSkew),
		DefaultTokenType:   tokenType,
		SignatureAlgorithm: sigAlg,
		DigestAlgorithm:    digAlg,
		AllowedRoles:       cfg.AllowedRoles,
		AllowedDomains:     cfg.AllowedDomains,
		RefuseUnknownRP:    cfg.RefuseUnknownRPs,
		RenewWindow:        time.Duration(cfg.RenewWindow),
	})
	s.Core.SetSigner(signer)
	s.Core.SetVerificationCerts(certs)
	if s.Signing == nil {
		s.Signing = kp
	}
	s.signing.Store(kp)
	s.lastSettings = fingerprint(stored)
	s.lastSigningCerts = signingFingerprint(certs)
	return nil
}

// signingFingerprint identifies the set of signing certificates, so that a
// key added or deleted through another node (rotation, overlap expiry) is
// noticed, not only a change of the active one.
func signingFingerprint(certs []*x509.Certificate) string {
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	return string(h.Sum(nil))
}

// changed reports whether stored settings or signing keys differ from what
// was applied last.
func (s *Server) changed(stored map[string]string, certs []*x509.Certificate) bool {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return fingerprint(stored) != s.lastSettings || signingFingerprint(certs) != s.lastSigningCerts
}

// watchRuntime polls the stored settings and the active signing key.
func (s *Server) watchRuntime(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := s.Store.ListSettings(ctx)
		if err != nil {
			s.Log.Warn("reading stored settings failed", "err", err)
			continue
		}
		stored := configSettings(all)
		// Certificates before service providers: a provider reloaded now
		// must not be served a certificate its alias no longer holds.
		if err := s.Trust.Cache.Refresh(ctx, s.Store); err != nil {
			s.Log.Warn("trust store cache not refreshed", "err", err)
		}
		if changed, err := s.Registry.Reload(ctx); err != nil {
			s.Log.Error("service providers not reloaded", "err", err)
		} else if changed {
			s.Log.Info("service providers reloaded")
		}
		if us := fingerprint(userStoreSettings(all)); us != s.lastUserStores {
			if err := s.reloadUserStores(ctx); err != nil {
				s.Log.Error("user stores not reloaded", "err", err)
			} else {
				s.lastUserStores = us
				s.Log.Info("user stores reloaded")
			}
		}
		certs, err := keys.SigningCerts(ctx, s.Store)
		if err != nil {
			continue
		}
		active, err := keys.ActiveCertPEM(ctx, s.Store, keys.PurposeSigning)
		if err != nil {
			continue
		}
		if !s.changed(stored, certs) && string(active) == string(s.SigningKey().CertPEM) {
			continue
		}
		if err := s.reloadRuntime(ctx); err != nil {
			s.Log.Error("stored settings not applied", "err", err)
			continue
		}
		s.Log.Info("runtime settings reloaded")
	}
}

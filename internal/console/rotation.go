package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/storage"
)

// SigningKey describes a stored signing key (never its private part).
type SigningKey struct {
	ID        string     `json:"id"`
	Active    bool       `json:"active"`
	Subject   string     `json:"subject"`
	NotAfter  time.Time  `json:"not_after"`
	Algorithm string     `json:"algorithm"`
	SHA256    string     `json:"sha256"`
	Created   time.Time  `json:"created"`
	RetireAt  *time.Time `json:"retire_at,omitempty"`
}

// SigningKeys lists the stored signing keys, oldest first, with their
// retirement times.
func SigningKeys(ctx context.Context, st storage.Storage) ([]SigningKey, error) {
	list, err := st.ListKeys(ctx, keys.PurposeSigning)
	if err != nil {
		return nil, err
	}
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	out := []SigningKey{}
	for _, k := range list {
		c, err := keys.ParseCertPEM(k.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		sum := sha256.Sum256(c.Raw)
		sk := SigningKey{ID: k.ID, Active: k.Active, Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC(),
			Algorithm: c.PublicKeyAlgorithm.String(), SHA256: hex.EncodeToString(sum[:]), Created: k.CreatedAt.UTC()}
		if v, ok := all[RetirePrefix+k.ID]; ok {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				sk.RetireAt = &t
			}
		}
		out = append(out, sk)
	}
	return out, nil
}

// Rotation is the result of a signing-key rotation.
type Rotation struct {
	New      SigningKey `json:"new"`
	Retiring []string   `json:"retiring"`
	RetireAt time.Time  `json:"retire_at"`
}

// Rotate generates a new active signing key of the same kind as the active
// one and schedules every previously active key for deletion after overlap:
// until then it stays published in metadata and accepted on renew and
// validate (every stored signing key is), so relying parties can pick up the
// new certificate first. Housekeep deletes it when its time has come.
func Rotate(ctx context.Context, km *keys.Manager, overlap time.Duration, now time.Time) (*Rotation, error) {
	st, ok := km.Store.(storage.Storage)
	if !ok {
		return nil, errors.New("console: rotation needs the full storage")
	}
	before, err := st.ListKeys(ctx, keys.PurposeSigning)
	if err != nil {
		return nil, err
	}
	alg := keys.RSA2048
	var old []string
	for _, k := range before {
		if !k.Active {
			continue
		}
		old = append(old, k.ID)
		if c, err := keys.ParseCertPEM(k.CertPEM); err == nil {
			if _, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
				alg = keys.ECDSAP256
			}
		}
	}
	kp, err := km.Generate(ctx, keys.PurposeSigning, alg, "avouch token signing")
	if err != nil {
		return nil, err
	}
	at := now.UTC().Add(overlap).Truncate(time.Second)
	if err := ScheduleRetirement(ctx, st, old, at); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(kp.Cert.Raw)
	return &Rotation{
		New: SigningKey{ID: kp.ID, Active: true, Subject: kp.Cert.Subject.String(), NotAfter: kp.Cert.NotAfter.UTC(),
			Algorithm: kp.Cert.PublicKeyAlgorithm.String(), SHA256: hex.EncodeToString(sum[:]), Created: now.UTC()},
		Retiring: append([]string{}, old...), RetireAt: at}, nil
}

// ScheduleRetirement records when the keys ids are to be deleted.
func ScheduleRetirement(ctx context.Context, st storage.Settings, ids []string, at time.Time) error {
	for _, id := range ids {
		if err := st.PutSetting(ctx, RetirePrefix+id, at.UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return nil
}

// Housekeep deletes rotated-out signing keys whose overlap period has
// ended and returns their IDs. A key that is active again is kept (its
// schedule is dropped). Every node may run it; deleting twice is harmless.
func Housekeep(ctx context.Context, st storage.Storage, now time.Time) ([]string, error) {
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for k, v := range all {
		id, ok := strings.CutPrefix(k, RetirePrefix)
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339, v)
		if err != nil || at.After(now) {
			continue
		}
		key, err := st.GetKey(ctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
			continue
		case key.Active:
		default:
			if err := st.DeleteKey(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			deleted = append(deleted, id)
		}
		if err := st.DeleteSetting(ctx, k); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

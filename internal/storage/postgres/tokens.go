package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectToken = `SELECT id, type, subject, relying_party, issued_at, expires_at, state,
	renewable, renew_after_expiry, data, updated_at FROM tokens`

func scanToken(row pgx.Row) (storage.Token, error) {
	var (
		t     storage.Token
		state string
	)
	if err := row.Scan(&t.ID, &t.Type, &t.Subject, &t.RelyingParty, &t.IssuedAt, &t.ExpiresAt, &state,
		&t.Renewable, &t.RenewAfterExpiry, &t.Data, &t.UpdatedAt); err != nil {
		return storage.Token{}, err
	}
	t.State = storage.TokenState(state)
	t.IssuedAt, t.ExpiresAt, t.UpdatedAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC(), t.UpdatedAt.UTC()
	return t, nil
}

// CreateToken records a new token. An empty State is stored as TokenActive
// and a zero UpdatedAt as now.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	if t.State == "" {
		t.State = storage.TokenActive
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (id, type, subject, relying_party, issued_at, expires_at,
		state, renewable, renew_after_expiry, data, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.Type, t.Subject, t.RelyingParty, ts(t.IssuedAt), ts(t.ExpiresAt), string(t.State),
		t.Renewable, t.RenewAfterExpiry, nonNil(t.Data), ts(t.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create token: %w", err)
	}
	return nil
}

// GetToken returns the token with id.
func (s *Store) GetToken(ctx context.Context, id string) (storage.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, selectToken+` WHERE id = $1`, id))
	if err != nil {
		return storage.Token{}, notFound(err, "get token")
	}
	return t, nil
}

// UpdateToken locks the token's row, applies fn and writes the result in one
// transaction. The ID cannot change; UpdatedAt is set to now.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(storage.Token) (storage.Token, error)) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanToken(tx.QueryRow(ctx, selectToken+` WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update token")
		}
		t, err := fn(old)
		if err != nil {
			return err
		}
		if t.ID != old.ID {
			return errors.New("postgres: update token: the ID of a token cannot change")
		}
		_, err = tx.Exec(ctx, `UPDATE tokens SET type = $1, subject = $2, relying_party = $3, issued_at = $4,
			expires_at = $5, state = $6, renewable = $7, renew_after_expiry = $8, data = $9, updated_at = $10
			WHERE id = $11`,
			t.Type, t.Subject, t.RelyingParty, ts(t.IssuedAt), ts(t.ExpiresAt), string(t.State),
			t.Renewable, t.RenewAfterExpiry, nonNil(t.Data), ts(s.now()), id)
		if err != nil {
			return fmt.Errorf("postgres: update token: %w", err)
		}
		return nil
	})
}

// DeleteTokensExpiredBefore deletes tokens with ExpiresAt < before.
func (s *Store) DeleteTokensExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tokens WHERE expires_at < $1`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}

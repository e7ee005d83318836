package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

const selectToken = `SELECT id, type, subject, relying_party, issued_at, expires_at, state,
	renewable, renew_after_expiry, data, updated_at FROM tokens`

func scanToken(sc scanner) (storage.Token, error) {
	var (
		t                           storage.Token
		state                       string
		issued, expires, updated    int64
		renewable, renewAfterExpiry int64
	)
	if err := sc.Scan(&t.ID, &t.Type, &t.Subject, &t.RelyingParty, &issued, &expires, &state,
		&renewable, &renewAfterExpiry, &t.Data, &updated); err != nil {
		return storage.Token{}, err
	}
	t.State = storage.TokenState(state)
	t.IssuedAt, t.ExpiresAt, t.UpdatedAt = fromMicros(issued), fromMicros(expires), fromMicros(updated)
	t.Renewable, t.RenewAfterExpiry = renewable != 0, renewAfterExpiry != 0
	return t, nil
}

// CreateToken records a new token. An empty State is stored as TokenActive

// CreateToken records a token. One INSERT is atomic on its own: no explicit
// transaction, which would cost a BEGIN and a COMMIT statement on the hot
// path of every token. (Grouping concurrent inserts into one commit was
// measured and gained nothing end to end: see docs/PERFORMANCE.md.)
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	if t.State == "" {
		t.State = storage.TokenActive
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.now()
	}
	_, err := s.insertToken.ExecContext(ctx, t.ID, t.Type, t.Subject, t.RelyingParty, toMicros(t.IssuedAt),
		toMicros(t.ExpiresAt), string(t.State), boolInt(t.Renewable), boolInt(t.RenewAfterExpiry), nonNil(t.Data),
		toMicros(t.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: create token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return nil
}

const insertTokenSQL = `INSERT INTO tokens (id, type, subject, relying_party, issued_at, expires_at,
	state, renewable, renew_after_expiry, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// GetToken returns the token with id.
func (s *Store) GetToken(ctx context.Context, id string) (storage.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, selectToken+` WHERE id = ?`, id))
	if err != nil {
		return storage.Token{}, notFound(err, "get token")
	}
	return t, nil
}

// UpdateToken applies fn to the stored token in one write transaction. The
// ID cannot change; UpdatedAt is set to now. fn must not call the Store.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(storage.Token) (storage.Token, error)) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		old, err := scanToken(tx.QueryRowContext(ctx, selectToken+` WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "update token")
		}
		t, err := fn(old)
		if err != nil {
			return err
		}
		if t.ID != old.ID {
			return errors.New("sqlite: update token: the ID of a token cannot change")
		}
		t.UpdatedAt = s.now()
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET type = ?, subject = ?, relying_party = ?, issued_at = ?,
			expires_at = ?, state = ?, renewable = ?, renew_after_expiry = ?, data = ?, updated_at = ? WHERE id = ?`,
			t.Type, t.Subject, t.RelyingParty, toMicros(t.IssuedAt), toMicros(t.ExpiresAt), string(t.State),
			boolInt(t.Renewable), boolInt(t.RenewAfterExpiry), nonNil(t.Data), toMicros(t.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("sqlite: update token: %w", err)
		}
		return nil
	})
}

// DeleteTokensExpiredBefore deletes tokens with ExpiresAt < before.
func (s *Store) DeleteTokensExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at < ?`, toMicros(before))
		if err != nil {
			return fmt.Errorf("sqlite: delete expired tokens: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

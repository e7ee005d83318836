package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

const bootstrapSetting = "bootstrap.admin_created"

// bootstrapAdmin creates user admin (role admin) on the first start. The
// password comes from AVOUCH_ADMIN_PASSWORD or is generated and printed once.
// It runs once per data store: deleting admin later does not resurrect it.
func bootstrapAdmin(ctx context.Context, st storage.Storage, out io.Writer) error {
	if _, err := st.GetSetting(ctx, bootstrapSetting); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	pw, fromEnv := os.LookupEnv("AVOUCH_ADMIN_PASSWORD")
	if !fromEnv || pw == "" {
		var err error
		if pw, err = randomPassword(20); err != nil {
			return err
		}
		fromEnv = false
	}
	hash, err := identity.HashPassword(pw)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	err = st.CreateUser(ctx, storage.User{Name: "admin", PasswordHash: hash, Roles: []string{"admin"},
		Claims: map[string]string{}, CreatedAt: now, UpdatedAt: now})
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		// Another node (or an earlier `avouch user add admin`) made it.
	case err != nil:
		return fmt.Errorf("create admin: %w", err)
	case fromEnv:
		fmt.Fprintln(out, "Created user 'admin' (role admin) with the password from AVOUCH_ADMIN_PASSWORD.")
	default:
		fmt.Fprintf(out, "Created user 'admin' (role admin). Its password, shown only this once:\n\n    %s\n\n", pw)
	}
	return st.PutSetting(ctx, bootstrapSetting, now.Format(time.RFC3339))
}

func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

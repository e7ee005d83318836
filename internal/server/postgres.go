package server

import (
	"context"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/postgres"
)

func openPostgres(ctx context.Context, url string) (storage.Storage, error) {
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	return st, nil
}

package server

import (
	"context"
	"errors"

	"github.com/avouch/avouch/internal/storage"
)

func openPostgres(ctx context.Context, url string) (storage.Storage, error) {
	return nil, errors.New("PostgreSQL support is not built yet")
}

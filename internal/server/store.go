package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

func openStore(ctx context.Context, cfg *config.Config) (storage.Storage, error) {
	if cfg.Database == "" {
		st, err := sqlite.Open(DatabasePath(cfg.DataDir))
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return st, nil
	}
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
		return openPostgres(ctx, cfg.Database)
	}
	return nil, fmt.Errorf("database: unsupported URL scheme (use postgres://… or leave empty for SQLite)")
}

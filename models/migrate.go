package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/warmtransfer/warmtransfer/migrations"
)

// migrationsTable is bun/migrate's default table of applied migrations.
const migrationsTable = "bun_migrations"

// migrateLockKey is the PostgreSQL advisory lock that lets one instance
// migrate at a time when several start together.
const migrateLockKey int64 = 0x77745f6d69677261 // "wt_migra"

// Migrate applies the migrations in migrations.FS that db has not applied
// yet, creating bun/migrate's own tables first. Running it again is a no-op.
func Migrate(ctx context.Context, db *bun.DB) error {
	migrator, err := newMigrator(db)
	if err != nil {
		return err
	}
	if isPostgres(db) {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("models: migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrateLockKey); err != nil {
			return fmt.Errorf("models: migrate: lock: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrateLockKey)
		}()
	}
	if err := migrator.Init(ctx); err != nil {
		return fmt.Errorf("models: migrate: init: %w", err)
	}
	if _, err := migrator.Migrate(ctx); err != nil {
		return fmt.Errorf("models: migrate: %w", err)
	}
	return nil
}

// MigrationsApplied reports whether every migration in migrations.FS has been
// applied to db, without changing anything: a readiness probe.
func MigrationsApplied(ctx context.Context, db *bun.DB) (bool, error) {
	var exists bool
	var err error
	if isPostgres(db) {
		err = db.NewRaw("SELECT to_regclass(?) IS NOT NULL", migrationsTable).Scan(ctx, &exists)
	} else {
		err = db.NewRaw("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)", migrationsTable).Scan(ctx, &exists)
	}
	if err != nil {
		return false, fmt.Errorf("models: migrations applied: %w", err)
	}
	if !exists {
		return false, nil
	}
	migrator, err := newMigrator(db)
	if err != nil {
		return false, err
	}
	ms, err := migrator.MigrationsWithStatus(ctx)
	if err != nil {
		return false, fmt.Errorf("models: migrations applied: %w", err)
	}
	return len(ms.Unapplied()) == 0, nil
}

func newMigrator(db *bun.DB) (*migrate.Migrator, error) {
	data, err := migrations.Data(db.Dialect().Name())
	if err != nil {
		return nil, fmt.Errorf("models: migrate: %w", err)
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(migrations.FS); err != nil {
		return nil, fmt.Errorf("models: migrate: %w", err)
	}
	return migrate.NewMigrator(db, ms,
		migrate.WithTableName(migrationsTable),
		// A migration that fails stays unapplied, so fixing it and starting
		// again retries it (the files are transactional and idempotent).
		migrate.WithMarkAppliedOnSuccess(true),
		migrate.WithTemplateData(data),
	), nil
}

// Package testdb gives each test a database of its own: a SQLite file in a
// temporary folder, or a fresh PostgreSQL database (dropped when the test
// ends) on the server WT_TEST_POSTGRES names.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/models"
)

// PostgresEnv names the PostgreSQL server the tests also run against, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresEnv = "WT_TEST_POSTGRES"

// SQLite returns the URL of a new SQLite database file.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// PostgresServer returns the server named by WT_TEST_POSTGRES. When it is
// unset the test is skipped, except under CI, where PostgreSQL must be tested.
func PostgresServer(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(PostgresEnv); u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set; CI must run the PostgreSQL tests (e.g. %s=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", PostgresEnv, PostgresEnv)
	}
	t.Skipf("PostgreSQL not tested: set %s to a server URL (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", PostgresEnv)
	return ""
}

// Postgres creates an empty database on the WT_TEST_POSTGRES server and
// returns its URL; it is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	serverURL := PostgresServer(t)
	ctx := context.Background()
	admin, err := models.Open(ctx, serverURL)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "wt_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name)); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// EngineEnv chooses the engine of URL: "sqlite" or "postgres". By default
// it is PostgreSQL when WT_TEST_POSTGRES is set, SQLite otherwise; CI runs
// the suite once each way.
const EngineEnv = "WT_TEST_DATABASE"

// URL returns a database for one test of the application.
func URL(t testing.TB) string {
	t.Helper()
	switch os.Getenv(EngineEnv) {
	case "sqlite":
		return SQLite(t)
	case "postgres":
		return Postgres(t)
	}
	if os.Getenv(PostgresEnv) != "" {
		return Postgres(t)
	}
	return SQLite(t)
}

// Empty deletes every row of the application's tables in db (bun/migrate's
// own tables keep theirs, so the schema stays migrated) and restarts their
// ids at 1. A test that replays many scenarios empties one database between
// them: creating and migrating a PostgreSQL database for each costs far
// more than the scenario. Run it in a transaction of its own.
func Empty(ctx context.Context, db bun.IDB) error {
	if db.Dialect().Name() == dialect.PG {
		return emptyPostgres(ctx, db)
	}
	return emptySQLite(ctx, db)
}

func emptySQLite(ctx context.Context, db bun.IDB) error {
	var tables []string
	// sqlite_sequence holds each AUTOINCREMENT table's last id.
	err := db.NewRaw(`SELECT name FROM sqlite_master WHERE type = 'table'
		AND (name = 'sqlite_sequence' OR name NOT LIKE 'sqlite\_%' ESCAPE '\')
		AND name NOT LIKE 'bun\_%' ESCAPE '\'`).Scan(ctx, &tables)
	if err != nil {
		return fmt.Errorf("testdb: list tables: %w", err)
	}
	if len(tables) == 0 {
		return errors.New("testdb: empty: no tables (is the database migrated?)")
	}
	// The tables refer to each other; checked at commit, when all are
	// empty, the order they are emptied in does not matter.
	if _, err := db.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
		return fmt.Errorf("testdb: defer foreign keys: %w", err)
	}
	for _, name := range tables {
		if _, err := db.ExecContext(ctx, "DELETE FROM ?", bun.Ident(name)); err != nil {
			return fmt.Errorf("testdb: empty %s: %w", name, err)
		}
	}
	return nil
}

// emptyPostgres deletes rather than truncates: TRUNCATE gives each table
// new files, which took a quarter of a second for the app's tables, longer
// than a whole scenario.
func emptyPostgres(ctx context.Context, db bun.IDB) error {
	var tables []string
	err := db.NewRaw(`SELECT tablename FROM pg_tables
		WHERE schemaname = current_schema() AND tablename NOT LIKE 'bun\_%'`).Scan(ctx, &tables)
	if err != nil {
		return fmt.Errorf("testdb: list tables: %w", err)
	}
	if len(tables) == 0 {
		return errors.New("testdb: empty: no tables (is the database migrated?)")
	}
	var refs []struct {
		Child  string `bun:"child"`
		Parent string `bun:"parent"`
	}
	err = db.NewRaw(`SELECT ch.relname AS child, pa.relname AS parent
		FROM pg_constraint c
		JOIN pg_class ch ON ch.oid = c.conrelid
		JOIN pg_class pa ON pa.oid = c.confrelid
		WHERE c.contype = 'f' AND ch.relnamespace = current_schema()::regnamespace`).Scan(ctx, &refs)
	if err != nil {
		return fmt.Errorf("testdb: list foreign keys: %w", err)
	}
	// A table is emptied once every table that refers to it is: foreign
	// keys are checked at each statement, unless declared deferrable.
	left := map[string]bool{}
	for _, name := range tables {
		left[name] = true
	}
	for len(left) > 0 {
		var next []string
		for name := range left {
			referred := false
			for _, r := range refs {
				if r.Parent == name && r.Child != name && left[r.Child] {
					referred = true
					break
				}
			}
			if !referred {
				next = append(next, name)
			}
		}
		if len(next) == 0 {
			return fmt.Errorf("testdb: empty: the foreign keys of %v form a cycle", tables)
		}
		for _, name := range next {
			if _, err := db.ExecContext(ctx, "DELETE FROM ?", bun.Ident(name)); err != nil {
				return fmt.Errorf("testdb: empty %s: %w", name, err)
			}
			delete(left, name)
		}
	}
	// The sequences behind the tables' identity (or serial) columns.
	_, err = db.ExecContext(ctx, `SELECT setval(s.oid, 1, false)
		FROM pg_class s
		JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
			AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
		JOIN pg_class t ON t.oid = d.refobjid
		WHERE s.relkind = 'S' AND t.relnamespace = current_schema()::regnamespace AND t.relname IN (?)`, bun.In(tables))
	if err != nil {
		return fmt.Errorf("testdb: restart ids: %w", err)
	}
	return nil
}

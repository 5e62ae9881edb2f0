// Package testdb gives each test a database of its own: a SQLite file in a
// temporary folder, or a fresh PostgreSQL database (dropped when the test
// ends) on the server WT_TEST_POSTGRES names, 127.0.0.1:5432 by default.
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
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/models"
)

// PostgresEnv names the PostgreSQL server the tests also run against, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Unset, it is
// DefaultPostgres.
const PostgresEnv = "WT_TEST_POSTGRES"

// DefaultPostgres is where the development and CI machines run PostgreSQL
// (trust authentication), so the PostgreSQL tests need no setting there.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// SQLite returns the URL of a new SQLite database file.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// PostgresServer returns the URL of the PostgreSQL server to test against:
// WT_TEST_POSTGRES, or DefaultPostgres when it is unset. When no server
// answers there the test is skipped, with a message that says how to run
// it, except under CI=true, where PostgreSQL must be tested and the test
// fails. A server that answers but refuses the tests fails them too,
// unless its URL was only the default's guess.
func PostgresServer(t testing.TB) string {
	t.Helper()
	serverURL, explicit := os.Getenv(PostgresEnv), true
	if serverURL == "" {
		serverURL, explicit = DefaultPostgres, false
	}
	v := judge(serverURL, explicit, os.Getenv("CI") == "true", probe(serverURL))
	switch {
	case v.fail != "":
		t.Fatal(v.fail)
	case v.skip != "":
		t.Skip(v.skip)
	}
	return serverURL
}

// verdict is what a test that needs PostgreSQL does: fail, skip, or (both
// empty) run.
type verdict struct{ fail, skip string }

// judge decides what the PostgreSQL tests do, given how the server at
// serverURL answered (probeErr; nil when it accepted a connection).
func judge(serverURL string, explicit, ci bool, probeErr error) verdict {
	if probeErr == nil {
		return verdict{}
	}
	where := serverURL
	if u, err := url.Parse(serverURL); err == nil {
		where = u.Redacted()
	}
	if !answered(probeErr) {
		if ci {
			return verdict{fail: fmt.Sprintf("PostgreSQL does not answer at %s (%v); CI must run the PostgreSQL tests: start the server, or set %s to one that answers", where, probeErr, PostgresEnv)}
		}
		return verdict{skip: fmt.Sprintf("PostgreSQL not tested: nothing answers at %s (%v); start PostgreSQL there with trust authentication, or set %s=postgres://USER@HOST:PORT/DB?sslmode=disable, to run these tests", where, probeErr, PostgresEnv)}
	}
	if explicit || ci {
		return verdict{fail: fmt.Sprintf("PostgreSQL at %s refused the tests: %v", where, probeErr)}
	}
	return verdict{skip: fmt.Sprintf("PostgreSQL not tested: the server at %s (the default) refused the tests (%v); set %s to a URL it accepts, to run them", where, probeErr, PostgresEnv)}
}

// answered reports whether err came from a server that answered (and
// refused, e.g. an unknown user or database), rather than from finding no
// server at all. One that is starting or stopping (a restart) is not
// answering yet.
func answered(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code != cannotConnectNow && pgErr.Code != adminShutdown
	}
	var parseErr *pgconn.ParseConfigError
	return errors.As(err, &parseErr) // a malformed URL is not a missing server
}

// PostgreSQL's SQLSTATEs for a server that is starting or shutting down.
const (
	cannotConnectNow = "57P03"
	adminShutdown    = "57P01"
)

// probeTimeout bounds the probe. A server on the machine answers (or is
// refused a connection) at once; this is for an address that drops
// packets, and for a busy server that is slow to start a backend.
const probeTimeout = 3 * time.Second

// probes holds each server's probe, run once per process: every test that
// needs PostgreSQL asks, and an address that drops packets would cost each
// of them the whole timeout.
var probes sync.Map // server URL -> func() error

// probe connects to serverURL once per process and reports why it could
// not, if it could not.
func probe(serverURL string) error {
	f, _ := probes.LoadOrStore(serverURL, sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return conn.Ping(ctx)
	}))
	return f.(func() error)()
}

// Postgres creates an empty database on the PostgresServer and returns its
// URL; it is dropped when the test ends.
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

// Package testdb gives each test a database of its own: a SQLite file in a
// temporary folder, or a fresh PostgreSQL database (dropped when the test
// ends) on the server WT_TEST_POSTGRES names.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/uptrace/bun"

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

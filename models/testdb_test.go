package models_test

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// testDialects are the engines every database test runs on. open returns an
// empty database that lives as long as the test.
var testDialects = []struct {
	name string
	open func(t *testing.T) *bun.DB
}{
	{"sqlite", emptySQLiteDB},
	{"postgres", emptyPostgresDB},
}

// eachDB runs fn as a subtest per engine, on a migrated database.
func eachDB(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	t.Helper()
	eachEmptyDB(t, func(t *testing.T, db *bun.DB) {
		t.Helper()
		if err := models.Migrate(t.Context(), db); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		fn(t, db)
	})
}

// eachEmptyDB runs fn as a subtest per engine, on a database with no tables.
func eachEmptyDB(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	t.Helper()
	for _, d := range testDialects {
		t.Run(d.name, func(t *testing.T) {
			fn(t, d.open(t))
		})
	}
}

func emptySQLiteDB(t *testing.T) *bun.DB {
	t.Helper()
	return openDB(t, testdb.SQLite(t))
}

func emptyPostgresDB(t *testing.T) *bun.DB {
	t.Helper()
	return openDB(t, testdb.Postgres(t))
}

func openDB(t *testing.T, dbURL string) *bun.DB {
	t.Helper()
	db, err := models.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("open %s: %v", dbURL, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

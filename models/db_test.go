package models_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/migrations"
	"github.com/warmtransfer/warmtransfer/models"
)

func TestOpenSQLite(t *testing.T) {
	tests := []struct {
		name string
		url  func(dir string) string
		file string // relative to dir: must exist afterwards
	}{
		{"sqlite colon", func(dir string) string { return "sqlite:" + filepath.Join(dir, "a.db") }, "a.db"},
		{"sqlite slashes", func(dir string) string { return "sqlite://" + filepath.Join(dir, "b.db") }, "b.db"},
		{"bare path", func(dir string) string { return filepath.Join(dir, "c.db") }, "c.db"},
		{"path with space and hash", func(dir string) string { return "sqlite:" + filepath.Join(dir, "my #1 db.sqlite") }, "my #1 db.sqlite"},
		{"extra DSN parameters", func(dir string) string { return "sqlite:" + filepath.Join(dir, "d.db") + "?_pragma=cache_size(-4000)" }, "d.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := models.Open(t.Context(), tt.url(dir))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			if db.Dialect().Name() != dialect.SQLite {
				t.Errorf("dialect = %s, want sqlite", db.Dialect().Name())
			}
			if _, err := os.Stat(filepath.Join(dir, tt.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
			pragmas := []struct {
				name string
				want string
			}{
				{"busy_timeout", "10000"},
				{"journal_mode", "wal"},
				{"foreign_keys", "1"},
				{"synchronous", "1"}, // NORMAL
			}
			for _, p := range pragmas {
				var got string
				if err := db.NewRaw("PRAGMA "+p.name).Scan(t.Context(), &got); err != nil {
					t.Fatalf("PRAGMA %s: %v", p.name, err)
				}
				if !strings.EqualFold(got, p.want) {
					t.Errorf("PRAGMA %s = %s, want %s", p.name, got, p.want)
				}
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"empty", "", "empty database URL"},
		{"mysql", "mysql://root@localhost/wt", `unsupported database URL scheme "mysql"`},
		{"file URI", "file:wt.db", `unsupported database URL scheme "file"`},
		{"sqlite without path", "sqlite:", "empty path"},
		{"unparsable postgres", "postgres://u:secret@host:notaport/db", "models: open postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := models.Open(t.Context(), tt.url)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.url)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%q) error = %q, want it to contain %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open(%q) error leaks the password: %q", tt.url, err)
			}
		})
	}
}

func TestOpenPostgres(t *testing.T) {
	serverURL := testdb.PostgresServer(t)
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("parse %s: %v", testdb.PostgresEnv, err)
	}
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			u := *u
			u.Scheme = scheme
			db, err := models.Open(t.Context(), u.String())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			if db.Dialect().Name() != dialect.PG {
				t.Errorf("dialect = %s, want pg", db.Dialect().Name())
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	eachEmptyDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		wantApplied := func(want bool) {
			t.Helper()
			got, err := models.MigrationsApplied(ctx, db)
			if err != nil {
				t.Fatalf("MigrationsApplied: %v", err)
			}
			if got != want {
				t.Fatalf("MigrationsApplied = %v, want %v", got, want)
			}
		}

		wantApplied(false)
		for i := range 2 {
			if err := models.Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
			wantApplied(true)
		}
		mustAgent(t, db, models.Agent{Identity: "alice"})

		// The down migration drops everything; migrating again recreates it.
		data, err := migrations.Data(db.Dialect().Name())
		if err != nil {
			t.Fatal(err)
		}
		ms := migrate.NewMigrations()
		if err := ms.Discover(migrations.FS); err != nil {
			t.Fatal(err)
		}
		migrator := migrate.NewMigrator(db, ms, migrate.WithTemplateData(data))
		if _, err := migrator.Rollback(ctx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		wantApplied(false)
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatalf("Migrate after rollback: %v", err)
		}
		wantApplied(true)
		if _, err := models.AgentByIdentity(ctx, db, "alice"); err == nil {
			t.Fatal("agent survived the rollback")
		}
	})
}

func TestMigrationsData(t *testing.T) {
	if _, err := migrations.Data(dialect.MySQL); err == nil {
		t.Error("Data(mysql) succeeded, want an error")
	}
}

func TestSchemaRejectsUnknownValues(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		call := mustCall(t, db, models.Call{CallSID: "CA1"})
		tests := []struct {
			name   string
			create func() error
		}{
			{"agent role", func() error {
				return models.CreateAgent(ctx, db, &models.Agent{Identity: "x1", Role: "admin"})
			}},
			{"agent presence", func() error {
				return models.CreateAgent(ctx, db, &models.Agent{Identity: "x2", Presence: "lunch"})
			}},
			{"call state", func() error {
				return models.CreateCall(ctx, db, &models.Call{CallSID: "CAx", ConferenceName: "wt-CAx", State: "parked"})
			}},
			{"leg role", func() error {
				return models.CreateLeg(ctx, db, &models.Leg{CallID: call.ID, CallSID: "CAl1", Role: "spy"})
			}},
			{"leg state", func() error {
				return models.CreateLeg(ctx, db, &models.Leg{CallID: call.ID, CallSID: "CAl2", Role: models.LegPrimary, State: "busy"})
			}},
			{"transfer mode", func() error {
				return models.CreateTransfer(ctx, db, &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: alice.ID, Mode: "warm"})
			}},
			{"transfer state", func() error {
				return models.CreateTransfer(ctx, db, &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: alice.ID, Mode: models.TransferBlind, State: "done"})
			}},
			{"transfer to a missing agent", func() error {
				return models.CreateTransfer(ctx, db, &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: 999, Mode: models.TransferBlind})
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.create(); err == nil {
					t.Fatal("insert succeeded, want a constraint error")
				}
			})
		}
	})
}

// Package models holds the bun models of the warm-transfer app and the queries
// on them, one file per aggregate. Every query takes a bun.IDB, so it runs the
// same on the *bun.DB and inside db.RunInTx.
//
// Nullable columns map to Go zero values (bun's nullzero): a zero time.Time,
// an empty string or a zero id is stored as NULL and read back as zero.
package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) when a query finds no row.
// The wrapped error also matches sql.ErrNoRows.
var ErrNotFound = errors.New("models: not found")

// ErrDuplicate is returned (wrapped) when an insert or update would break a
// unique constraint, e.g. a second call with the same CallSid (Twilio retries
// webhooks, so callers use it to find the row that is already there).
var ErrDuplicate = errors.New("models: duplicate")

// sqlitePragmas are applied to every SQLite connection. busy_timeout makes a
// writer wait instead of failing with SQLITE_BUSY; WAL lets readers run during
// a write; foreign_keys is off by default in SQLite. _txlock=immediate starts
// every transaction as a writer, so two transactions that read then write
// cannot deadlock on the lock upgrade (SQLITE_BUSY that busy_timeout cannot
// resolve).
var sqlitePragmas = []string{
	"_pragma=busy_timeout(10000)",
	"_pragma=journal_mode(WAL)",
	"_pragma=foreign_keys(1)",
	"_pragma=synchronous(NORMAL)",
	// A statement journal (an insert into calls keeps one, to undo it
	// alone) stays in memory instead of spilling into a temporary file
	// that is opened and written for each statement.
	"_pragma=temp_store(MEMORY)",
	"_txlock=immediate",
	// The app checkpoints the write-ahead log in the background
	// (callflow.Service.RunDispatcher): SQLite's own checkpoint, inside a
	// writer's commit, is only the fallback, at 10,000 pages (40 MB)
	// instead of 1,000.
	"_pragma=wal_autocheckpoint(10000)",
}

// Open connects to the database that databaseURL names and pings it:
//
//   - postgres://... or postgresql://... (PostgreSQL through pgx v5)
//   - sqlite:PATH, sqlite://PATH or a bare PATH (a SQLite file, created if missing)
//
// A SQLite PATH may carry extra modernc.org/sqlite DSN parameters after "?".
func Open(ctx context.Context, databaseURL string) (*bun.DB, error) {
	var (
		db  *bun.DB
		err error
	)
	switch {
	case databaseURL == "":
		return nil, errors.New("models: open: empty database URL (want postgres://..., sqlite:PATH or a file path)")
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		db, err = openPostgres(databaseURL)
	default:
		path, ok := sqlitePath(databaseURL)
		if !ok {
			scheme, _, _ := strings.Cut(databaseURL, ":")
			return nil, fmt.Errorf("models: open: unsupported database URL scheme %q (want postgres://..., postgresql://..., sqlite:PATH, sqlite://PATH or a file path)", scheme)
		}
		db, err = openSQLite(path)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("models: open: ping %s: %w", db.Dialect().Name(), err)
	}
	return db, nil
}

func openPostgres(databaseURL string) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("models: open postgres: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	// database/sql opens a connection for every query in flight and keeps
	// two when they end: under a burst of webhooks each request opened a
	// PostgreSQL connection (a server process of its own, and the hot
	// statements prepared anew on it), closed it at once, and past
	// max_connections (100 by default, for every instance together) got
	// "too many clients". A bounded pool, kept open, queues the excess in Go.
	sqldb.SetMaxOpenConns(postgresConns)
	sqldb.SetMaxIdleConns(postgresConns)
	return bun.NewDB(sqldb, pgdialect.New()), nil
}

// postgresConns is the size of each instance's PostgreSQL connection pool:
// a few per CPU of a small database server, and room for several instances
// under PostgreSQL's default max_connections of 100.
const postgresConns = 16

// sqlitePath reports the file path a SQLite database URL names. A URL with any
// other scheme is not one; a bare path (no scheme) is.
func sqlitePath(databaseURL string) (string, bool) {
	if rest, ok := strings.CutPrefix(databaseURL, "sqlite://"); ok {
		return rest, true
	}
	if rest, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
		return rest, true
	}
	if u, err := url.Parse(databaseURL); err == nil && len(u.Scheme) > 1 {
		// "file:..." and other schemes are not accepted; a one-letter scheme is a
		// Windows drive ("C:\data\wt.db").
		return "", false
	}
	return databaseURL, true
}

// sqliteConns is the size of a SQLite file database's connection pool.
const sqliteConns = 4

func openSQLite(path string) (*bun.DB, error) {
	path, extra, _ := strings.Cut(path, "?")
	if path == "" {
		return nil, errors.New("models: open sqlite: empty path")
	}
	params := strings.Join(sqlitePragmas, "&")
	if extra != "" {
		params += "&" + extra
	}
	// A "file:" URI, so the path must be escaped ('?', '#', '%', spaces).
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("models: open sqlite %q: %w", path, err)
	}
	if path == ":memory:" {
		// Every connection would get its own empty in-memory database.
		sqldb.SetMaxOpenConns(1)
	} else {
		// SQLite has one writer at a time: more connections only queue
		// on its lock until busy_timeout fails them with SQLITE_BUSY
		// (seen under load), and database/sql's default of 2 idle
		// connections reopened one per burst. A few, kept open, serve
		// reads beside the writer.
		sqldb.SetMaxOpenConns(sqliteConns)
		sqldb.SetMaxIdleConns(sqliteConns)
	}
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

// now is the time the models stamp rows with: UTC, at the microsecond
// precision both engines store, so a row read back equals the one written.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// wrapErr prefixes err with the operation and maps driver errors to
// ErrNotFound and ErrDuplicate.
func wrapErr(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("models: %s: %w (%w)", op, ErrNotFound, err)
	case isUniqueViolation(err):
		return fmt.Errorf("models: %s: %w: %w", op, ErrDuplicate, err)
	default:
		return fmt.Errorf("models: %s: %w", op, err)
	}
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// checkAffected turns "no row changed" into ErrNotFound.
func checkAffected(op string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("models: %s: %w", op, err)
	}
	if n == 0 {
		return wrapErr(op, sql.ErrNoRows)
	}
	return nil
}

// rowLock is how PostgreSQL rows read in order to change them are locked:
// FOR NO KEY UPDATE, not FOR UPDATE. Inserting a row that references
// another (an event or a leg naming a call or an agent) takes a key-share
// lock on the row it references, which FOR UPDATE blocks and FOR NO KEY
// UPDATE does not. With FOR UPDATE, a transaction holding the event lock
// (see AppendEvent) could wait for a row this one had locked while this
// one waited for the event lock: a deadlock that PostgreSQL breaks only
// after deadlock_timeout (a second), failing one of them. FOR NO KEY
// UPDATE still excludes every other writer of the row, and is what an
// UPDATE takes, unless it changes a column with a unique constraint:
// setting calls.conference_sid takes the stronger lock, so a transaction
// that names a call in its events locks the call first (and the one that
// sets the SID has it locked already).
const rowLock = "NO KEY UPDATE"

// isPostgres reports whether db talks to PostgreSQL, for the few statements
// (row locks) that SQLite has no spelling for and does not need.
func isPostgres(db bun.IDB) bool {
	return db.Dialect().Name() == dialect.PG
}

// CheckpointWAL copies the pages committed to SQLite's write-ahead log
// into the database file, so the log can start over. It is passive:
// readers and the writer go on meanwhile, and a checkpoint already running
// makes it return at once. It does nothing on PostgreSQL.
func CheckpointWAL(ctx context.Context, db bun.IDB) error {
	if isPostgres(db) {
		return nil
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return fmt.Errorf("models: checkpoint the write-ahead log: %w", err)
	}
	return nil
}

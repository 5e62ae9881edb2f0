package testdb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// closedPort is a URL on the loopback where nothing listens: the port was
// just free, and its listener is closed.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable&connect_timeout=2"
}

// The probe tells a missing server from one that answers and refuses, with
// real connections: the first skips the tests away from CI, the second
// fails them when its URL was asked for.
func TestProbe(t *testing.T) {
	t.Run("nothing answers", func(t *testing.T) {
		dead := closedPort(t)
		err := probe(dead)
		if err == nil || answered(err) {
			t.Fatalf("probe(%s) = %v, want an error from no server", dead, err)
		}
		// Once per process: the second ask gets the first answer.
		if again := probe(dead); again != err {
			t.Errorf("the second probe of %s answered %v, want the first's %v", dead, again, err)
		}
	})
	t.Run("a malformed URL", func(t *testing.T) {
		err := probe("postgres://postgres@127.0.0.1:notaport/postgres")
		if err == nil || !answered(err) {
			t.Fatalf("probe of a malformed URL = %v, want an error that is not a missing server", err)
		}
	})
	t.Run("the server answers", func(t *testing.T) {
		server := PostgresServer(t)
		if err := probe(server); err != nil {
			t.Fatalf("probe(%s) = %v", server, err)
		}
		u, err := url.Parse(server)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/wt_test_no_such_database"
		err = probe(u.String())
		if err == nil || !answered(err) {
			t.Fatalf("probe of a database that does not exist = %v, want the server's refusal", err)
		}
	})
}

func TestJudge(t *testing.T) {
	noServer := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	refused := fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28000", Message: "role \"nobody\" does not exist"})
	starting := fmt.Errorf("connect: %w", &pgconn.PgError{Code: cannotConnectNow, Message: "the database system is starting up"})
	const withPassword = "postgres://wt:secret@db.example:5432/postgres"
	tests := []struct {
		name     string
		explicit bool
		ci       bool
		err      error
		want     string // "run", "skip" or "fail"
	}{
		{"answers: run", false, false, nil, "run"},
		{"answers under CI: run", true, true, nil, "run"},
		{"no server away from CI: skip", false, false, noServer, "skip"},
		{"no server at the URL asked for, away from CI: skip", true, false, noServer, "skip"},
		{"no server under CI: fail", false, true, noServer, "fail"},
		{"starting up away from CI: skip", true, false, starting, "skip"},
		{"starting up under CI: fail", true, true, starting, "fail"},
		{"the URL asked for is refused: fail", true, false, refused, "fail"},
		{"the default is refused away from CI: skip", false, false, refused, "skip"},
		{"the default is refused under CI: fail", false, true, refused, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(withPassword, tt.explicit, tt.ci, tt.err)
			got := "run"
			switch {
			case v.fail != "" && v.skip != "":
				t.Fatalf("verdict %+v both fails and skips", v)
			case v.fail != "":
				got = "fail"
			case v.skip != "":
				got = "skip"
			}
			if got != tt.want {
				t.Fatalf("judge = %s (%+v), want %s", got, v, tt.want)
			}
			msg := v.fail + v.skip
			if strings.Contains(msg, "secret") {
				t.Errorf("the message shows the password: %s", msg)
			}
			if got == "run" {
				return
			}
			if !strings.Contains(msg, "db.example:5432") || !strings.Contains(msg, tt.err.Error()) {
				t.Errorf("the message does not say where and why: %s", msg)
			}
			// A skip must say how to run the tests after all.
			if got == "skip" && !strings.Contains(msg, PostgresEnv) {
				t.Errorf("the skip does not name %s: %s", PostgresEnv, msg)
			}
		})
	}
}

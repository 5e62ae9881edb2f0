package faults_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// restartEnv must be set for TestPostgresRestartsUnderTraffic: restarting
// the server would break every other test using it at the same time, so CI
// runs this test on its own.
const restartEnv = "WT_TEST_PG_RESTART"

func restartPostgres(t *testing.T) {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("cannot find the PostgreSQL cluster to restart: %v", err)
	}
	cmd := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart", "-m", "fast")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
	}
}

// TestPostgresRestartsUnderTraffic restarts PostgreSQL while agents' pages,
// readiness probes and Twilio's webhooks keep coming: requests during the
// outage fail cleanly (an answer, never a hang or a dropped connection), and
// the app recovers by itself within seconds, calls included.
func TestPostgresRestartsUnderTraffic(t *testing.T) {
	if os.Getenv(restartEnv) == "" {
		if os.Getenv("CI") == "true" {
			t.Skipf("CI runs this test in its own step, with %s=1", restartEnv)
		}
		t.Skipf("set %s=1 to restart the local PostgreSQL under traffic (run it alone)", restartEnv)
	}
	dbURL := testdb.Postgres(t)
	addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"bob", "Bob Baker", "agent"})
	tw := newTwilio(t)
	app := newInstance(t, "app", dbURL, tw)
	app.start()
	tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
	tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
	alice := signIn(t, app.URL, "alice")

	first, _ := tw.sim.PlaceInbound("+15551230001", "", "")
	tw.sim.Accept(tw.ringing(t, "alice"))
	db := openDB(t, dbURL)
	waitDB(t, "the first call with Alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, first)
		return err == nil && c.State == models.CallWithAgent, err
	})

	// Traffic while the server restarts.
	stop := make(chan struct{})
	var mu sync.Mutex
	statuses := map[int]int{}
	var failures []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	session := &http.Client{Jar: alice.http.Jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/readyz", "/agent", "/"} {
		wg.Add(1)
		go func(path string) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := session.Get(app.URL + path)
				mu.Lock()
				if err != nil {
					failures = append(failures, path+": "+err.Error())
				} else {
					statuses[resp.StatusCode]++
					resp.Body.Close()
				}
				mu.Unlock()
				poll := time.NewTimer(20 * time.Millisecond)
				<-poll.C
			}
		}(path)
	}
	restartPostgres(t)

	// The app is ready again by itself within seconds.
	recovered := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(app.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the app was not ready 15 s after PostgreSQL restarted")
		}
		poll := time.NewTimer(100 * time.Millisecond)
		<-poll.C
	}
	t.Logf("ready again %s after the restart finished", time.Since(recovered).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	for _, f := range failures {
		t.Errorf("a request failed without an answer: %s", f)
	}
	for status := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable && status != http.StatusSeeOther {
			t.Errorf("a request during the restart answered %d (answers: %v)", status, statuses)
		}
	}
	t.Logf("answers during the restart: %v", statuses)

	// Calls work again: the old one ends, a new one is offered and answered.
	tw.sim.Hangup(first)
	waitDB(t, "the first call ended", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, first)
		return err == nil && c.State == models.CallEnded, err
	})
	second, _ := tw.sim.PlaceInbound("+15551230002", "", "")
	tw.sim.Accept(tw.ringing(t, "alice"))
	waitDB(t, "the second call with Alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, second)
		return err == nil && c.State == models.CallWithAgent, err
	})
}

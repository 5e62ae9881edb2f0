package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/models"
)

func noEnv(string) string { return "" }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSimulatorModeRingsTheSignedInAgent is the README's promise: run the
// app with no Twilio settings, sign in, place a call with curl, and the
// signed-in agent's simulated phone rings.
func TestSimulatorModeRingsTheSignedInAgent(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"-addr", addr, "-database-url", "sqlite:" + filepath.Join(t.TempDir(), "wt.db")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, stdout := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, noEnv, strings.NewReader(""), stdout, io.Discard)
		stdout.Close()
	}()

	// Read the printed demo accounts.
	passwords := map[string]string{}
	account := regexp.MustCompile(`^\s+(\w+)\s+(agent|manager)\s+password (\S+)`)
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if m := account.FindStringSubmatch(lines.Text()); m != nil {
			passwords[m[1]] = m[3]
		}
		if len(passwords) == 4 {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if passwords["alice"] == "" || passwords["maria"] == "" {
		t.Fatalf("demo accounts not printed: %v", passwords)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	resp, err = browser.PostForm(base+"/signin", url.Values{"identity": {"alice"}, "password": {passwords["alice"]}, "csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/agent" {
		t.Fatalf("signing in landed on %s", resp.Request.URL)
	}

	// curl -X POST localhost:8080/sim/calls -d From=+15551230001
	resp, err = http.PostForm(base+"/sim/calls", url.Values{"From": {"+15551230001"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("placing the call: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			Calls []struct{ To, Status string } `json:"calls"`
		}
		resp, err := http.Get(base + "/sim/state")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		ringing := false
		for _, c := range st.Calls {
			ringing = ringing || (c.To == "client:alice" && c.Status == "ringing")
		}
		if ringing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's phone never rang: %+v", st.Calls)
		}
		poll := time.NewTimer(20 * time.Millisecond) // polling with a deadline
		<-poll.C
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the app did not shut down on cancel")
	}
}

func TestAgentAdd(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "wt.db")
	var out strings.Builder
	err := run(context.Background(), []string{"agent", "add", "-identity", "dana", "-name", "Dana Director", "-role", "manager", "-database-url", dbURL},
		noEnv, strings.NewReader("correct horse battery\n"), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := models.AgentByIdentity(context.Background(), db, "dana")
	if err != nil {
		t.Fatal(err)
	}
	if a.Role != models.RoleManager || a.Name != "Dana Director" || !auth.CheckPassword(a.PasswordHash, "correct horse battery") {
		t.Fatalf("agent = %+v", a)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"no identity", []string{"agent", "add", "-name", "X", "-password", "longenough", "-database-url", dbURL}},
		{"bad identity", []string{"agent", "add", "-identity", "no spaces", "-name", "X", "-password", "longenough", "-database-url", dbURL}},
		{"bad role", []string{"agent", "add", "-identity", "x", "-name", "X", "-role", "admin", "-password", "longenough", "-database-url", dbURL}},
		{"short password", []string{"agent", "add", "-identity", "x", "-name", "X", "-password", "short", "-database-url", dbURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), tt.args, noEnv, strings.NewReader(""), io.Discard, io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestHelpAndHalfConfiguration(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-h"}, noEnv, nil, &out, io.Discard); err == nil {
		t.Fatal("-h did not return ErrHelp")
	}
	for _, want := range []string{"WT_ADDR", "WT_PUBLIC_URL", "WT_DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_API_URL", "agent add"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
	env := map[string]string{"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TWILIO_AUTH_TOKEN") || !strings.Contains(err.Error(), "TWILIO_NUMBER") {
		t.Fatalf("half a Twilio configuration: %v", err)
	}
}

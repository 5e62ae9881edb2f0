// Command warmtransfer runs the warm-transfer contact center.
//
//	warmtransfer [flags]                 serve (simulator mode with no Twilio settings)
//	warmtransfer agent add [flags]       create or reset an agent or manager
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	// WT_TIMEZONE names a zone; a container image may have no zone
	// database of its own.
	_ "time/tzdata"

	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/config"
	"github.com/warmtransfer/warmtransfer/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, config.ErrHelp) || errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warmtransfer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) >= 2 && args[0] == "agent" && args[1] == "add" {
		return addAgent(ctx, args[2:], getenv, stdin, stdout)
	}
	if len(args) >= 1 && args[0] == "agent" {
		return errors.New("usage: warmtransfer agent add -identity ID -name NAME [-role agent|manager] [-password PW, or on stdin]")
	}
	cfg, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(stdout)
		fmt.Fprintln(stdout, "\nTo create an agent or manager (the first manager of a real deployment):\n  warmtransfer agent add -identity ID -name NAME [-role agent|manager] [-password PW, or on stdin]")
		return err
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return serve(ctx, cfg, stdout, stderr)
}

func serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	log.Info("warm transfer starting", "config", cfg)
	fmt.Fprintf(stdout, "Warm Transfer is listening on %s (public URL %s)\n", ln.Addr(), cfg.PublicURL)
	if cfg.Simulator {
		accounts, err := a.SeedDemoAccounts(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nSimulator mode: no Twilio account needed. Calls, phones and Twilio itself are simulated.\n")
		fmt.Fprintf(stdout, "  Sign in:            %s/signin\n", cfg.PublicURL)
		fmt.Fprintf(stdout, "  Simulator console:  %s/sim\n", cfg.PublicURL)
		fmt.Fprintf(stdout, "  Place a call:       curl -X POST %s/sim/calls -d From=+15551230001\n\n", cfg.PublicURL)
		fmt.Fprintln(stdout, "Demo accounts (new passwords at every start):")
		for _, acc := range accounts {
			fmt.Fprintf(stdout, "  %-8s %-8s password %s  (%s)\n", acc.Identity, acc.Role, acc.Password, acc.Name)
		}
		if cfg.SessionSecretGenerated {
			fmt.Fprintln(stdout, "\nWT_SESSION_SECRET is not set: sessions end when the app restarts.")
		}
		fmt.Fprintln(stdout)
	}
	return a.Serve(ctx, ln)
}

// addAgent creates an agent or manager, or resets an existing one, for a
// real deployment where nobody can sign in yet.
func addAgent(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("agent add", flag.ContinueOnError)
	fs.SetOutput(stdout)
	identity := fs.String("identity", "", "the agent's identity (their browser phone's client name), e.g. alice")
	name := fs.String("name", "", "the agent's name as colleagues see it")
	role := fs.String("role", "agent", "agent or manager")
	password := fs.String("password", "", "the password (read from standard input when not given)")
	dbURL := fs.String("database-url", "", "database URL (default: WT_DATABASE_URL or sqlite:warmtransfer.db)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *identity == "" || *name == "" {
		return errors.New("agent add: -identity and -name are required")
	}
	if *password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("agent add: reading the password: %w", err)
		}
		*password = strings.TrimRight(line, "\r\n")
	}
	url := *dbURL
	if url == "" {
		url = getenv("WT_DATABASE_URL")
	}
	if url == "" {
		url = "sqlite:warmtransfer.db"
	}
	db, err := models.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	if err := app.UpsertAgent(ctx, db, *identity, *name, models.Role(*role), *password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %q (%s) can now sign in.\n", *role, *identity, *name)
	return nil
}

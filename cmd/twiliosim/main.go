// Command twiliosim runs the Twilio simulator on its own, so the app (or
// anything else that speaks Twilio's REST API and webhooks) can be pointed at
// it with TWILIO_API_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// option is one setting: a flag, the environment variable that sets its
// default, and whether -h must hide its value.
type option struct {
	flag, env, def, usage string
	secret                bool
	dst                   *string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "twiliosim:", err)
		os.Exit(2)
	}
}

var (
	e164         = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
	alphanumeric = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// run serves the simulator configured by args and the environment until ctx
// ends. Usage and logs go to stderr; ready, when not nil, is told the
// address the simulator listens on once it accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(net.Addr)) error {
	var addr, accountSID, authToken, number, voiceURL, fallback, statusCallback string
	options := []option{
		{"addr", "TWILIOSIM_ADDR", "localhost:8081", "address to listen on", false, &addr},
		{"account-sid", "TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000", "the simulated account's SID", false, &accountSID},
		{"auth-token", "TWILIO_AUTH_TOKEN", "00000000000000000000000000000000", "the auth token that signs webhooks and guards the REST API", true, &authToken},
		{"number", "TWILIO_NUMBER", "+15550100000", "the account's phone number, which simulated customers call", false, &number},
		{"voice-url", "TWILIOSIM_VOICE_URL", "http://localhost:8080/conference/connect/client", "the number's voice webhook", false, &voiceURL},
		{"voice-fallback-url", "TWILIOSIM_VOICE_FALLBACK_URL", "", "the number's fallback webhook", false, &fallback},
		{"status-callback", "TWILIOSIM_STATUS_CALLBACK", "", "the number's call status callback", false, &statusCallback},
	}
	fs := flag.NewFlagSet("twiliosim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range options {
		def := o.def
		if v := getenv(o.env); v != "" {
			def = v
		}
		fs.StringVar(o.dst, o.flag, def, o.usage)
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: twiliosim [flags]\n\nRuns a simulated Twilio account: its REST API under /2010-04-01, its control API and page under /sim.\nEach flag can also be set with its environment variable.")
		for _, o := range options {
			def := o.def
			if o.secret {
				def = "(secret)"
			}
			fmt.Fprintf(fs.Output(), "  -%-20s %-30s %s (default %q)\n", o.flag, o.env, o.usage, def)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	if err := validate(accountSID, authToken, number, map[string]string{"voice-url": voiceURL, "voice-fallback-url": fallback, "status-callback": statusCallback}); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sim, err := twiliosim.New(twiliosim.Config{
		AccountSID: accountSID, AuthToken: authToken, Number: number,
		VoiceURL: voiceURL, VoiceFallbackURL: fallback, VoiceStatusCallback: statusCallback,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		sim.Close()
		return err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("twilio simulator listening", "url", "http://"+ln.Addr().String()+"/sim", "account", accountSID, "number", number, "voice_url", voiceURL)
	if ready != nil {
		ready(ln.Addr())
	}

	select {
	case err := <-served:
		sim.Close()
		return err
	case <-ctx.Done():
	}
	// Closing the simulator first ends the phones' event streams, which
	// Shutdown would otherwise wait on.
	sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// validate refuses settings the simulator or twilio-go could not work with,
// naming the flag at fault.
func validate(accountSID, authToken, number string, urls map[string]string) error {
	switch {
	case !alphanumeric.MatchString(accountSID):
		return errors.New("-account-sid must be letters and digits, like AC0123...")
	case !alphanumeric.MatchString(authToken):
		return errors.New("-auth-token must be letters and digits")
	case !e164.MatchString(number):
		return fmt.Errorf("-number %q is not an E.164 number like +15550100000", number)
	}
	for name, v := range urls {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-%s %q is not an http(s) URL", name, v)
		}
	}
	return nil
}

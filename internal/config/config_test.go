package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	testAccountSID    = "AC0123456789abcdef0123456789abcdef"
	testAuthToken     = "auth-token-do-not-print-0123456789"
	testAPIKey        = "SKfedcba9876543210fedcba9876543210"
	testAPISecret     = "api-secret-do-not-print-0123456789"
	testNumber        = "+15551230000"
	testSessionSecret = "session-secret-do-not-print-0123456789"
	testPublicURL     = "https://wt.example.com"
)

// env turns a map into a getenv function.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// twilioEnv is a complete, valid Twilio configuration.
func twilioEnv() map[string]string {
	return map[string]string{
		"TWILIO_ACCOUNT_SID": testAccountSID,
		"TWILIO_AUTH_TOKEN":  testAuthToken,
		"TWILIO_API_KEY":     testAPIKey,
		"TWILIO_API_SECRET":  testAPISecret,
		"TWILIO_NUMBER":      testNumber,
		"WT_PUBLIC_URL":      testPublicURL,
		"WT_SESSION_SECRET":  testSessionSecret,
	}
}

// with returns a copy of m with the given keys set; an empty value deletes.
func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestLoad(t *testing.T) {
	simulatorDefaults := Config{
		Addr:                   "localhost:8080",
		PublicURL:              "http://localhost:8080",
		DatabaseURL:            "sqlite:warmtransfer.db",
		SessionTTL:             12 * time.Hour,
		TokenTTL:               time.Hour,
		ServiceLevelTarget:     20 * time.Second,
		Location:               time.UTC,
		RingTimeout:            20 * time.Second,
		MaxMissedOffers:        3,
		APIURL:                 "https://api.twilio.com",
		Simulator:              true,
		SessionSecretGenerated: true,
	}
	fullTwilio := Config{
		Addr:               "localhost:8080",
		PublicURL:          testPublicURL,
		DatabaseURL:        "sqlite:warmtransfer.db",
		SessionSecret:      testSessionSecret,
		SessionTTL:         12 * time.Hour,
		TokenTTL:           time.Hour,
		ServiceLevelTarget: 20 * time.Second,
		Location:           time.UTC,
		RingTimeout:        20 * time.Second,
		MaxMissedOffers:    3,
		AccountSID:         testAccountSID,
		AuthToken:          testAuthToken,
		APIKey:             testAPIKey,
		APISecret:          testAPISecret,
		Number:             testNumber,
		APIURL:             "https://api.twilio.com",
	}
	modify := func(c Config, f func(*Config)) Config { f(&c); return c }

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Config // SessionSecret is checked apart when generated
	}{
		{
			name: "defaults in simulator mode",
			want: simulatorDefaults,
		},
		{
			name: "simulator with a session secret keeps it",
			env:  map[string]string{"WT_SESSION_SECRET": testSessionSecret},
			want: modify(simulatorDefaults, func(c *Config) {
				c.SessionSecret, c.SessionSecretGenerated = testSessionSecret, false
			}),
		},
		{
			name: "simulator public URL follows addr",
			env:  map[string]string{"WT_ADDR": "127.0.0.1:9000"},
			want: modify(simulatorDefaults, func(c *Config) {
				c.Addr, c.PublicURL = "127.0.0.1:9000", "http://127.0.0.1:9000"
			}),
		},
		{
			name: "simulator public URL uses localhost when listening on every interface",
			args: []string{"-addr", ":9000"},
			want: modify(simulatorDefaults, func(c *Config) {
				c.Addr, c.PublicURL = ":9000", "http://localhost:9000"
			}),
		},
		{
			name: "simulator public URL uses localhost for 0.0.0.0",
			args: []string{"-addr", "0.0.0.0:9000"},
			want: modify(simulatorDefaults, func(c *Config) {
				c.Addr, c.PublicURL = "0.0.0.0:9000", "http://localhost:9000"
			}),
		},
		{
			name: "TWILIO_API_URL alone keeps simulator mode",
			env:  map[string]string{"TWILIO_API_URL": "http://localhost:9999/"},
			want: modify(simulatorDefaults, func(c *Config) { c.APIURL = "http://localhost:9999" }),
		},
		{
			name: "full twilio config",
			env:  twilioEnv(),
			want: fullTwilio,
		},
		{
			name: "twilio config from flags only",
			args: []string{
				"-account-sid", testAccountSID, "-auth-token", testAuthToken,
				"-api-key", testAPIKey, "-api-secret", testAPISecret, "-number", testNumber,
				"-public-url", testPublicURL, "-session-secret", testSessionSecret,
			},
			want: fullTwilio,
		},
		{
			name: "public URL trailing slash trimmed",
			env:  with(twilioEnv(), "WT_PUBLIC_URL", "https://wt.example.com/base/"),
			want: modify(fullTwilio, func(c *Config) { c.PublicURL = "https://wt.example.com/base" }),
		},
		{
			name: "http public URL allowed against a standalone simulator",
			env: with(twilioEnv(),
				"WT_PUBLIC_URL", "http://localhost:8080",
				"TWILIO_API_URL", "http://localhost:9999"),
			want: modify(fullTwilio, func(c *Config) {
				c.PublicURL, c.APIURL = "http://localhost:8080", "http://localhost:9999"
			}),
		},
		{
			name: "surrounding whitespace trimmed",
			env:  with(twilioEnv(), "TWILIO_NUMBER", " +15551230000\n"),
			want: fullTwilio,
		},
		{
			name: "flags override env",
			args: []string{
				"-addr", "127.0.0.1:9090",
				"-public-url", "https://flag.example.com",
				"-database-url", "postgres://localhost/wt",
				"-session-secret", "flag-session-secret-0123456789abcdef",
				"-session-ttl", "30m",
				"-token-ttl=2h",
				"-account-sid", "ACffffffffffffffffffffffffffffffff",
				"-auth-token", "flag-auth-token",
				"-api-key", "SKffffffffffffffffffffffffffffffff",
				"-api-secret", "flag-api-secret",
				"-number", "+442071234567",
				"-api-url", "https://api.example.com",
			},
			env: with(twilioEnv(),
				"WT_ADDR", "127.0.0.1:1",
				"WT_DATABASE_URL", "sqlite:env.db",
				"WT_SESSION_TTL", "1h",
				"WT_TOKEN_TTL", "3h",
				"TWILIO_API_URL", "https://env.example.com"),
			want: Config{
				Addr:               "127.0.0.1:9090",
				PublicURL:          "https://flag.example.com",
				DatabaseURL:        "postgres://localhost/wt",
				SessionSecret:      "flag-session-secret-0123456789abcdef",
				SessionTTL:         30 * time.Minute,
				TokenTTL:           2 * time.Hour,
				ServiceLevelTarget: 20 * time.Second,
				Location:           time.UTC,
				RingTimeout:        20 * time.Second,
				MaxMissedOffers:    3,
				AccountSID:         "ACffffffffffffffffffffffffffffffff",
				AuthToken:          "flag-auth-token",
				APIKey:             "SKffffffffffffffffffffffffffffffff",
				APISecret:          "flag-api-secret",
				Number:             "+442071234567",
				APIURL:             "https://api.example.com",
			},
		},
		{
			name: "routing settings",
			env:  with(twilioEnv(), "WT_RING_TIMEOUT", "15s", "WT_WRAP_UP", "30s", "WT_MAX_MISSED_OFFERS", "0"),
			want: modify(fullTwilio, func(c *Config) {
				c.RingTimeout, c.WrapUp, c.MaxMissedOffers = 15*time.Second, 30*time.Second, 0
			}),
		},
		{
			name: "time zone",
			env:  with(twilioEnv(), "WT_TIMEZONE", "Europe/Paris"),
			want: modify(fullTwilio, func(c *Config) { c.Location = mustLoad(t, "Europe/Paris") }),
		},
		{
			name: "service level target",
			env:  with(twilioEnv(), "WT_SERVICE_LEVEL_SECONDS", "30"),
			want: modify(fullTwilio, func(c *Config) { c.ServiceLevelTarget = 30 * time.Second }),
		},
		{
			name: "token TTL of exactly 24h accepted",
			env:  with(twilioEnv(), "WT_TOKEN_TTL", "24h"),
			want: modify(fullTwilio, func(c *Config) { c.TokenTTL = 24 * time.Hour }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.SessionSecretGenerated {
				if len(got.SessionSecret) < 32 {
					t.Errorf("generated session secret is %d bytes, want at least 32", len(got.SessionSecret))
				}
				got.SessionSecret = ""
			}
			// Each load of a zone is its own *time.Location: compare names.
			if got.Location.String() != tt.want.Location.String() {
				t.Errorf("Location = %v, want %v", got.Location, tt.want.Location)
			}
			got.Location, tt.want.Location = nil, nil
			if *got != tt.want {
				t.Errorf("Load mismatch\n got: %#v\nwant: %#v\nsecrets: got %q %q %q, want %q %q %q",
					*got, tt.want,
					got.SessionSecret, got.AuthToken, got.APISecret,
					tt.want.SessionSecret, tt.want.AuthToken, tt.want.APISecret)
			}
		})
	}
}

func TestLoadGeneratesDistinctSecrets(t *testing.T) {
	a, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionSecret == b.SessionSecret {
		t.Error("two loads generated the same session secret")
	}
}

// TestLoadHalfConfigurations gives every non-empty proper subset of the five
// Twilio settings and expects exactly the others to be named as missing.
func TestLoadHalfConfigurations(t *testing.T) {
	full := twilioEnv()
	for mask := 1; mask < 1<<len(twilioSettings)-1; mask++ {
		var given, missing []string
		e := with(full)
		for i, name := range twilioSettings {
			if mask&(1<<i) != 0 {
				given = append(given, name)
			} else {
				missing = append(missing, name)
				delete(e, name)
			}
		}
		t.Run("given "+strings.Join(given, "+"), func(t *testing.T) {
			_, err := Load(nil, env(e))
			if err == nil {
				t.Fatal("Load succeeded, want an incomplete-settings error")
			}
			want := "twilio settings incomplete: missing " + strings.Join(missing, ", ")
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || lines[0] != want {
				t.Errorf("error = %q, want exactly %q", err, want)
			}
		})
	}
}

func TestLoadHalfConfigurationFromFlag(t *testing.T) {
	_, err := Load([]string{"-account-sid", testAccountSID}, env(nil))
	if err == nil {
		t.Fatal("Load succeeded, want an incomplete-settings error")
	}
	want := "twilio settings incomplete: missing TWILIO_AUTH_TOKEN, TWILIO_API_KEY, TWILIO_API_SECRET, TWILIO_NUMBER"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // each must appear in the error, one error per line
	}{
		{
			name: "bad account SID",
			env:  with(twilioEnv(), "TWILIO_ACCOUNT_SID", "AC123"),
			want: []string{`TWILIO_ACCOUNT_SID: must be AC followed by 32 lowercase hex digits, got "AC123"`},
		},
		{
			name: "account SID with uppercase hex",
			env:  with(twilioEnv(), "TWILIO_ACCOUNT_SID", strings.ToUpper(testAccountSID)),
			want: []string{"TWILIO_ACCOUNT_SID:"},
		},
		{
			name: "API key with account prefix",
			env:  with(twilioEnv(), "TWILIO_API_KEY", testAccountSID),
			want: []string{"TWILIO_API_KEY: must be SK followed by 32 lowercase hex digits"},
		},
		{
			name: "number without plus",
			env:  with(twilioEnv(), "TWILIO_NUMBER", "15551230000"),
			want: []string{`TWILIO_NUMBER: must be an E.164 number`},
		},
		{
			name: "number starting with zero",
			env:  with(twilioEnv(), "TWILIO_NUMBER", "+05551230000"),
			want: []string{"TWILIO_NUMBER:"},
		},
		{
			name: "number too long",
			env:  with(twilioEnv(), "TWILIO_NUMBER", "+1234567890123456"),
			want: []string{"TWILIO_NUMBER:"},
		},
		{
			name: "public URL missing with twilio",
			env:  with(twilioEnv(), "WT_PUBLIC_URL", ""),
			want: []string{"WT_PUBLIC_URL: required with Twilio settings"},
		},
		{
			name: "public URL http with real twilio",
			env:  with(twilioEnv(), "WT_PUBLIC_URL", "http://wt.example.com"),
			want: []string{"WT_PUBLIC_URL: must be https with Twilio settings"},
		},
		{
			name: "public URL relative",
			env:  map[string]string{"WT_PUBLIC_URL": "/webhooks"},
			want: []string{"WT_PUBLIC_URL: must be an absolute http or https URL"},
		},
		{
			name: "public URL wrong scheme",
			env:  map[string]string{"WT_PUBLIC_URL": "ftp://wt.example.com"},
			want: []string{"WT_PUBLIC_URL: must be an absolute http or https URL"},
		},
		{
			name: "public URL with query",
			env:  map[string]string{"WT_PUBLIC_URL": "https://wt.example.com/?a=b"},
			want: []string{"WT_PUBLIC_URL: must not have a query or fragment"},
		},
		{
			name: "public URL with empty query",
			env:  map[string]string{"WT_PUBLIC_URL": "https://wt.example.com/?"},
			want: []string{"WT_PUBLIC_URL: must not have a query or fragment"},
		},
		{
			name: "public URL with fragment",
			env:  map[string]string{"WT_PUBLIC_URL": "https://wt.example.com/#top"},
			want: []string{"WT_PUBLIC_URL: must not have a query or fragment"},
		},
		{
			name: "public URL with credentials",
			env:  map[string]string{"WT_PUBLIC_URL": "https://user:pw@wt.example.com"},
			want: []string{"WT_PUBLIC_URL: must not contain credentials"},
		},
		{
			name: "API URL not absolute",
			env:  map[string]string{"TWILIO_API_URL": "api.twilio.com"},
			want: []string{"TWILIO_API_URL: must be an absolute http or https URL"},
		},
		{
			name: "session secret missing with twilio",
			env:  with(twilioEnv(), "WT_SESSION_SECRET", ""),
			want: []string{"WT_SESSION_SECRET: required with Twilio settings"},
		},
		{
			name: "session secret too short",
			env:  map[string]string{"WT_SESSION_SECRET": "short"},
			want: []string{"WT_SESSION_SECRET: must be at least 32 bytes, got 5"},
		},
		{
			name: "session TTL not a duration",
			env:  map[string]string{"WT_SESSION_TTL": "12"},
			want: []string{`WT_SESSION_TTL: must be a duration such as 1h or 30m, got "12"`},
		},
		{
			name: "service level target not whole seconds",
			env:  map[string]string{"WT_SERVICE_LEVEL_SECONDS": "20s"},
			want: []string{`WT_SERVICE_LEVEL_SECONDS: must be a whole number of seconds from 1 to 3600, got "20s"`},
		},
		{
			name: "service level target zero",
			args: []string{"-service-level-seconds", "0"},
			want: []string{"WT_SERVICE_LEVEL_SECONDS: must be a whole number of seconds from 1 to 3600"},
		},
		{
			name: "session TTL zero",
			args: []string{"-session-ttl", "0s"},
			want: []string{"WT_SESSION_TTL: must be positive"},
		},
		{
			name: "token TTL negative",
			env:  map[string]string{"WT_TOKEN_TTL": "-1h"},
			want: []string{"WT_TOKEN_TTL: must be positive"},
		},
		{
			name: "token TTL over 24h",
			args: []string{"-token-ttl", "25h"},
			want: []string{"WT_TOKEN_TTL: must be at most 24h0m0s, got 25h0m0s"},
		},
		{
			name: "ring timeout too short",
			env:  map[string]string{"WT_RING_TIMEOUT": "4s"},
			want: []string{`WT_RING_TIMEOUT: must be a duration from 5s to 10m (Twilio's bounds for ringing), got "4s"`},
		},
		{
			name: "ring timeout too long",
			env:  map[string]string{"WT_RING_TIMEOUT": "11m"},
			want: []string{`WT_RING_TIMEOUT: must be a duration from 5s to 10m (Twilio's bounds for ringing), got "11m"`},
		},
		{
			name: "wrap-up negative",
			args: []string{"-wrap-up", "-5s"},
			want: []string{`WT_WRAP_UP: must be a duration from 0s to 1h, got "-5s"`},
		},
		{
			name: "missed offers not a number",
			env:  map[string]string{"WT_MAX_MISSED_OFFERS": "three"},
			want: []string{`WT_MAX_MISSED_OFFERS: must be a whole number from 0 to 100, got "three"`},
		},
		{
			name: "unknown time zone",
			env:  map[string]string{"WT_TIMEZONE": "Mars/Olympus_Mons"},
			want: []string{`WT_TIMEZONE: must be an IANA time zone name such as UTC or Europe/Paris, got "Mars/Olympus_Mons"`},
		},
		{
			name: "the machine's own zone is not a setting",
			env:  map[string]string{"WT_TIMEZONE": "Local"},
			want: []string{`WT_TIMEZONE: must be an IANA time zone name such as UTC or Europe/Paris, got "Local"`},
		},
		{
			name: "addr without port",
			env:  map[string]string{"WT_ADDR": "localhost"},
			want: []string{`WT_ADDR: must be host:port, got "localhost"`},
		},
		{
			name: "database URL emptied by flag",
			args: []string{"-database-url="},
			want: []string{"WT_DATABASE_URL: must not be empty"},
		},
		{
			name: "every error reported together",
			env: map[string]string{
				"TWILIO_ACCOUNT_SID": "bad",
				"TWILIO_API_KEY":     "bad",
				"TWILIO_NUMBER":      "bad",
				"WT_TOKEN_TTL":       "48h",
				"WT_SESSION_TTL":     "soon",
				"WT_PUBLIC_URL":      "http://wt.example.com",
			},
			want: []string{
				"twilio settings incomplete: missing TWILIO_AUTH_TOKEN, TWILIO_API_SECRET",
				"TWILIO_ACCOUNT_SID:",
				"TWILIO_API_KEY:",
				"TWILIO_NUMBER:",
				"WT_TOKEN_TTL:",
				"WT_SESSION_TTL:",
				"WT_PUBLIC_URL: must be https",
				"WT_SESSION_SECRET: required",
			},
		},
		{
			name: "unknown flag",
			args: []string{"-port", "80"},
			want: []string{"flag provided but not defined: -port"},
		},
		{
			name: "positional argument",
			args: []string{"serve"},
			want: []string{`unexpected argument "serve"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err == nil {
				t.Fatalf("Load succeeded with %v, want an error", c)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			if got := len(strings.Split(msg, "\n")); got != len(tt.want) {
				t.Errorf("error has %d lines, want %d:\n%s", got, len(tt.want), msg)
			}
			for _, secret := range []string{testAuthToken, testAPISecret, testSessionSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("error reveals a secret:\n%s", msg)
				}
			}
		})
	}
}

func TestLoadHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"-addr", ":1", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := Load(args, env(nil))
			if !errors.Is(err, ErrHelp) {
				t.Errorf("Load(%q) error = %v, want ErrHelp", args, err)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	e := with(twilioEnv(), "WT_DATABASE_URL", "postgres://wt:db-password-do-not-print@db.example.com/wt?sslmode=require")
	c, err := Load(nil, env(e))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	secrets := []string{testAuthToken, testAPISecret, testSessionSecret, "db-password-do-not-print"}

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("start", "config", c)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("start", slog.Any("config", *c))

	outputs := []struct {
		name string
		text string
	}{
		{"String", c.String()},
		{"fmt %v of pointer", fmt.Sprintf("%v", c)},
		{"fmt %+v of value", fmt.Sprintf("%+v", *c)},
		{"fmt %#v of value", fmt.Sprintf("%#v", *c)},
		{"LogValue", c.LogValue().String()},
		{"slog JSON", jsonLog.String()},
		{"slog text", textLog.String()},
	}
	for _, out := range outputs {
		t.Run(out.name, func(t *testing.T) {
			for _, s := range secrets {
				if strings.Contains(out.text, s) {
					t.Errorf("output reveals %q:\n%s", s, out.text)
				}
			}
			for _, visible := range []string{testAccountSID, testAPIKey, testNumber, testPublicURL, "db.example.com", "[redacted]"} {
				if !strings.Contains(out.text, visible) {
					t.Errorf("output lacks %q:\n%s", visible, out.text)
				}
			}
		})
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"sqlite file", "sqlite:warmtransfer.db", "sqlite:warmtransfer.db"},
		{"url without password", "postgres://wt@db/wt", "postgres://wt@db/wt"},
		{"url with password", "postgres://wt:pw@db/wt", "postgres://wt:xxxxx@db/wt"},
		{"url with password parameter", "postgres://db/wt?password=pw&sslmode=require", "postgres://db/wt?password=[redacted]&sslmode=require"},
		{"key value dsn", "host=db password='p w' dbname=wt", "host=db password=[redacted] dbname=wt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactDatabaseURL(tt.in); got != tt.want {
				t.Errorf("redactDatabaseURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	out := b.String()
	for _, o := range options {
		t.Run(o.env, func(t *testing.T) {
			line := ""
			for l := range strings.Lines(out) {
				if strings.Contains(l, " "+o.env+" ") {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("usage has no line for %s:\n%s", o.env, out)
			}
			if !strings.Contains(line, "-"+o.flag+" ") {
				t.Errorf("usage line for %s lacks -%s: %q", o.env, o.flag, line)
			}
			if o.def != "" && !o.secret && !strings.Contains(line, o.def) {
				t.Errorf("usage line for %s lacks default %q: %q", o.env, o.def, line)
			}
			if o.secret && !strings.Contains(line, "(secret)") {
				t.Errorf("usage line for secret %s is not marked: %q", o.env, line)
			}
		})
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

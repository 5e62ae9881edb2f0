// Package config reads the application's settings from environment variables
// and command-line flags, applies defaults and validates them before the
// server starts.
//
// Every setting is an environment variable with a matching flag; a flag given
// on the command line wins over its variable. With no Twilio settings at all
// the app runs in simulator mode; half a Twilio configuration is an error that
// names every missing variable.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrHelp is returned by Load when the arguments ask for help (-h, -help), so
// the caller can print Usage and exit successfully.
var ErrHelp = flag.ErrHelp

// Config is the validated configuration of the app. Its String, GoString and
// LogValue methods never reveal secrets.
type Config struct {
	// Addr is the address the HTTP server listens on.
	Addr string
	// PublicURL is the base URL Twilio calls; webhook signatures are computed
	// over it. It has no trailing slash.
	PublicURL string
	// DatabaseURL selects the store, e.g. "sqlite:warmtransfer.db".
	DatabaseURL string
	// SessionSecret signs session cookies; at least 32 bytes.
	SessionSecret string
	// SessionTTL is how long a login session lasts.
	SessionTTL time.Duration
	// TokenTTL is the lifetime of the Twilio Access Tokens handed to browsers.
	TokenTTL time.Duration
	// Location is the contact center's time zone: the board's day begins
	// at its midnight.
	Location *time.Location
	// ServiceLevelTarget is the answer time the board's service level
	// measures against.
	ServiceLevelTarget time.Duration
	// RingTimeout is how long an agent's phone rings before the offer
	// moves on to the next agent.
	RingTimeout time.Duration
	// WrapUp is how long an agent stays in wrap-up after a call; zero
	// turns wrap-up off.
	WrapUp time.Duration
	// MaxMissedOffers is how many offers in a row an agent may miss before
	// being set away; zero means never.
	MaxMissedOffers int

	// AccountSID is the Twilio account SID (AC + 32 hex digits).
	AccountSID string
	// AuthToken is the Twilio auth token; it also verifies webhook signatures.
	AuthToken string
	// APIKey is the SID of the Twilio API key that signs Access Tokens.
	APIKey string
	// APISecret is the secret of APIKey.
	APISecret string
	// Number is the Twilio phone number in E.164 form.
	Number string
	// APIURL is the base URL of the Twilio REST API; pointing it elsewhere
	// talks to a standalone simulator. It has no trailing slash.
	APIURL string

	// Simulator is true when no Twilio setting is given at all.
	Simulator bool
	// SessionSecretGenerated is true when SessionSecret was generated at
	// start-up, so sessions do not survive a restart.
	SessionSecretGenerated bool
}

// Environment variable names; errors name settings by these.
const (
	envAddr          = "WT_ADDR"
	envPublicURL     = "WT_PUBLIC_URL"
	envDatabaseURL   = "WT_DATABASE_URL"
	envSessionSecret = "WT_SESSION_SECRET"
	envSessionTTL    = "WT_SESSION_TTL"
	envTokenTTL      = "WT_TOKEN_TTL"
	envServiceLevel  = "WT_SERVICE_LEVEL_SECONDS"
	envRingTimeout   = "WT_RING_TIMEOUT"
	envWrapUp        = "WT_WRAP_UP"
	envMaxMissed     = "WT_MAX_MISSED_OFFERS"
	envTimezone      = "WT_TIMEZONE"
	envAccountSID    = "TWILIO_ACCOUNT_SID"
	envAuthToken     = "TWILIO_AUTH_TOKEN"
	envAPIKey        = "TWILIO_API_KEY"
	envAPISecret     = "TWILIO_API_SECRET"
	envNumber        = "TWILIO_NUMBER"
	envAPIURL        = "TWILIO_API_URL"
)

const (
	defaultAPIURL        = "https://api.twilio.com"
	minSecretBytes       = 32
	maxTokenTTL          = 24 * time.Hour
	redacted             = "[redacted]"
	generatedSecretBytes = 32
)

// option is one row of the configuration table: it drives flag parsing, the
// environment lookup and Usage.
type option struct {
	env    string
	flag   string
	def    string // used when neither the flag nor the variable is set
	desc   string
	secret bool // the value and any default are never printed
}

var options = []option{
	{env: envAddr, flag: "addr", def: "localhost:8080",
		desc: "address the HTTP server listens on"},
	{env: envPublicURL, flag: "public-url",
		desc: "base URL Twilio calls, webhook signatures are computed over it; default http://<addr> in simulator mode, required (https) with Twilio"},
	{env: envDatabaseURL, flag: "database-url", def: "sqlite:warmtransfer.db",
		desc: "database URL"},
	{env: envSessionSecret, flag: "session-secret", secret: true,
		desc: "key for session cookies, at least 32 bytes; generated at start-up in simulator mode, required with Twilio"},
	{env: envSessionTTL, flag: "session-ttl", def: "12h",
		desc: "lifetime of a login session"},
	{env: envTokenTTL, flag: "token-ttl", def: "1h",
		desc: "lifetime of browser Access Tokens, at most 24h"},
	{env: envServiceLevel, flag: "service-level-seconds", def: "20",
		desc: "the board's service level counts calls answered within this many seconds"},
	{env: envRingTimeout, flag: "ring-timeout", def: "20s",
		desc: "how long an agent's phone rings before the caller is offered to the next agent"},
	{env: envWrapUp, flag: "wrap-up", def: "0s",
		desc: "wrap-up time after each call before the agent is offered the next one; 0s for none"},
	{env: envMaxMissed, flag: "max-missed-offers", def: "3",
		desc: "missed offers in a row after which an agent is set away; 0 for never"},
	{env: envTimezone, flag: "timezone", def: "UTC",
		desc: "the contact center's time zone (IANA name, e.g. Europe/Paris): where the board's day begins"},
	{env: envAccountSID, flag: "account-sid",
		desc: "Twilio account SID (AC...)"},
	{env: envAuthToken, flag: "auth-token", secret: true,
		desc: "Twilio auth token"},
	{env: envAPIKey, flag: "api-key",
		desc: "Twilio API key SID (SK...) for Access Tokens"},
	{env: envAPISecret, flag: "api-secret", secret: true,
		desc: "Twilio API key secret"},
	{env: envNumber, flag: "number",
		desc: "Twilio phone number, E.164 (+15551230000)"},
	{env: envAPIURL, flag: "api-url", def: defaultAPIURL,
		desc: "Twilio REST API base URL; point it at a standalone simulator"},
}

// twilioSettings are the settings whose presence selects Twilio over the
// simulator; TWILIO_API_URL alone does not.
var twilioSettings = []string{envAccountSID, envAuthToken, envAPIKey, envAPISecret, envNumber}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	apiKeyPattern     = regexp.MustCompile(`^SK[0-9a-f]{32}$`)
	e164Pattern       = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
)

// Load reads the configuration from args (the command-line arguments without
// the program name) and getenv (usually os.Getenv). It returns ErrHelp when
// args ask for help, and otherwise every validation error at once, joined
// with errors.Join, each naming its environment variable.
func Load(args []string, getenv func(string) string) (*Config, error) {
	values, err := resolve(args, getenv)
	if err != nil {
		return nil, err
	}

	c := &Config{
		Addr:          values[envAddr],
		DatabaseURL:   values[envDatabaseURL],
		SessionSecret: values[envSessionSecret],
		AccountSID:    values[envAccountSID],
		AuthToken:     values[envAuthToken],
		APIKey:        values[envAPIKey],
		APISecret:     values[envAPISecret],
		Number:        values[envNumber],
	}
	var errs []error
	fail := func(env, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, a...)))
	}

	var missing []string
	for _, env := range twilioSettings {
		if values[env] == "" {
			missing = append(missing, env)
		}
	}
	c.Simulator = len(missing) == len(twilioSettings)
	if !c.Simulator && len(missing) > 0 {
		errs = append(errs, fmt.Errorf("twilio settings incomplete: missing %s", strings.Join(missing, ", ")))
	}

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		fail(envAddr, "must be host:port, got %q", c.Addr)
	}
	if c.DatabaseURL == "" {
		fail(envDatabaseURL, "must not be empty")
	}

	c.SessionTTL = parseTTL(values, envSessionTTL, fail)
	c.TokenTTL = parseTTL(values, envTokenTTL, fail)
	if c.TokenTTL > maxTokenTTL {
		fail(envTokenTTL, "must be at most %s, got %s", maxTokenTTL, c.TokenTTL)
	}

	// Twilio's bounds for a participant's Timeout, which this becomes.
	if d, err := time.ParseDuration(values[envRingTimeout]); err != nil || d < 5*time.Second || d > 10*time.Minute {
		fail(envRingTimeout, "must be a duration from 5s to 10m (Twilio's bounds for ringing), got %q", values[envRingTimeout])
	} else {
		c.RingTimeout = d
	}
	if d, err := time.ParseDuration(values[envWrapUp]); err != nil || d < 0 || d > time.Hour {
		fail(envWrapUp, "must be a duration from 0s to 1h, got %q", values[envWrapUp])
	} else {
		c.WrapUp = d
	}
	if n, err := strconv.Atoi(values[envMaxMissed]); err != nil || n < 0 || n > 100 {
		fail(envMaxMissed, "must be a whole number from 0 to 100, got %q", values[envMaxMissed])
	} else {
		c.MaxMissedOffers = n
	}

	if loc, err := time.LoadLocation(values[envTimezone]); err != nil || values[envTimezone] == "" || strings.EqualFold(values[envTimezone], "local") {
		fail(envTimezone, "must be an IANA time zone name such as UTC or Europe/Paris, got %q", values[envTimezone])
	} else {
		c.Location = loc
	}

	if n, err := strconv.Atoi(values[envServiceLevel]); err != nil || n < 1 || n > 3600 {
		fail(envServiceLevel, "must be a whole number of seconds from 1 to 3600, got %q", values[envServiceLevel])
	} else {
		c.ServiceLevelTarget = time.Duration(n) * time.Second
	}

	if v := values[envAPIURL]; !isAbsoluteHTTPURL(v) {
		fail(envAPIURL, "must be an absolute http or https URL, got %q", v)
	} else {
		c.APIURL = strings.TrimRight(v, "/")
	}

	if c.AccountSID != "" && !accountSIDPattern.MatchString(c.AccountSID) {
		fail(envAccountSID, "must be AC followed by 32 lowercase hex digits, got %q", c.AccountSID)
	}
	if c.APIKey != "" && !apiKeyPattern.MatchString(c.APIKey) {
		fail(envAPIKey, "must be SK followed by 32 lowercase hex digits, got %q", c.APIKey)
	}
	if c.Number != "" && !e164Pattern.MatchString(c.Number) {
		fail(envNumber, "must be an E.164 number such as +15551230000, got %q", c.Number)
	}

	c.PublicURL = publicURL(c, values[envPublicURL], fail)

	switch {
	case c.SessionSecret == "" && c.Simulator:
		secret, err := generateSecret()
		if err != nil {
			return nil, fmt.Errorf("%s: generate: %w", envSessionSecret, err)
		}
		c.SessionSecret, c.SessionSecretGenerated = secret, true
	case c.SessionSecret == "":
		fail(envSessionSecret, "required with Twilio settings (at least %d bytes)", minSecretBytes)
	case len(c.SessionSecret) < minSecretBytes:
		// The length is safe to print; the value is not.
		fail(envSessionSecret, "must be at least %d bytes, got %d", minSecretBytes, len(c.SessionSecret))
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// resolve returns the raw value of every option, keyed by environment
// variable: the flag when given on the command line, else the variable when
// non-empty, else the default.
func resolve(args []string, getenv func(string) string) (map[string]string, error) {
	fs := flag.NewFlagSet("warmtransfer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller decides what to print
	fs.Usage = func() {}
	flagValues := make(map[string]*string, len(options))
	for _, o := range options {
		flagValues[o.flag] = fs.String(o.flag, "", o.desc)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	values := make(map[string]string, len(options))
	for _, o := range options {
		var v string
		switch {
		case given[o.flag]:
			v = *flagValues[o.flag]
		case getenv(o.env) != "":
			v = getenv(o.env)
		default:
			v = o.def
		}
		// Stray whitespace from shell quoting or secret files is never meant.
		values[o.env] = strings.TrimSpace(v)
	}
	return values, nil
}

func parseTTL(values map[string]string, env string, fail func(env, format string, a ...any)) time.Duration {
	v := values[env]
	d, err := time.ParseDuration(v)
	if err != nil {
		fail(env, "must be a duration such as 1h or 30m, got %q", v)
		return 0
	}
	if d <= 0 {
		fail(env, "must be positive, got %s", d)
		return 0
	}
	return d
}

// publicURL validates the configured public URL, or derives it from Addr in
// simulator mode.
func publicURL(c *Config, v string, fail func(env, format string, a ...any)) string {
	if v == "" {
		if !c.Simulator {
			fail(envPublicURL, "required with Twilio settings (the https URL Twilio calls)")
			return ""
		}
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return "" // reported against WT_ADDR
		}
		if host == "" || net.ParseIP(host).IsUnspecified() {
			// Listening on every interface; a browser or simulator reaches it
			// through localhost.
			host = "localhost"
		}
		return "http://" + net.JoinHostPort(host, port)
	}

	u, err := url.Parse(v)
	switch {
	case err != nil || !isAbsoluteHTTPURL(v):
		fail(envPublicURL, "must be an absolute http or https URL, got %q", v)
		return ""
	case strings.ContainsAny(v, "?#"):
		fail(envPublicURL, "must not have a query or fragment, got %q", v)
		return ""
	case u.User != nil:
		fail(envPublicURL, "must not contain credentials")
		return ""
	case u.Scheme != "https" && !c.Simulator && c.APIURL == defaultAPIURL:
		// Real Twilio only calls webhooks it can reach securely; plain http is
		// allowed against a standalone simulator (TWILIO_API_URL).
		fail(envPublicURL, "must be https with Twilio settings, got %q", v)
		return ""
	}
	return strings.TrimRight(v, "/")
}

func isAbsoluteHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func generateSecret() (string, error) {
	b := make([]byte, generatedSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Usage writes the table of options: flag, environment variable, default and
// description. Defaults of secrets are never printed.
func Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: warmtransfer [flags]

Every setting is an environment variable with a matching flag; a flag wins
over its variable. With no TWILIO_* setting at all (TWILIO_API_URL aside) the
app runs against the built-in simulator. -h prints this table.

`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENVIRONMENT\tDEFAULT\tDESCRIPTION")
	for _, o := range options {
		def := o.def
		switch {
		case o.secret:
			def = "(secret)"
		case def == "":
			def = "-"
		}
		fmt.Fprintf(tw, "  -%s\t%s\t%s\t%s\n", o.flag, o.env, def, o.desc)
	}
	tw.Flush()
}

// String describes c with every secret redacted.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("config.Config{")
	for i, f := range c.fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %v", f.name, f.value)
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with every secret redacted.
func (c Config) LogValue() slog.Value {
	fields := c.fields()
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		attrs = append(attrs, slog.Any(f.key, f.value))
	}
	return slog.GroupValue(attrs...)
}

type field struct {
	name, key string
	value     any
}

// fields lists what String and LogValue may show: secrets only as
// "[redacted]" when set, and the database URL without its password.
func (c Config) fields() []field {
	return []field{
		{"Addr", "addr", c.Addr},
		{"PublicURL", "public_url", c.PublicURL},
		{"DatabaseURL", "database_url", redactDatabaseURL(c.DatabaseURL)},
		{"SessionSecret", "session_secret", redact(c.SessionSecret)},
		{"SessionSecretGenerated", "session_secret_generated", c.SessionSecretGenerated},
		{"SessionTTL", "session_ttl", c.SessionTTL},
		{"TokenTTL", "token_ttl", c.TokenTTL},
		{"ServiceLevelTarget", "service_level_target", c.ServiceLevelTarget},
		{"Location", "timezone", c.Location.String()},
		{"RingTimeout", "ring_timeout", c.RingTimeout},
		{"WrapUp", "wrap_up", c.WrapUp},
		{"MaxMissedOffers", "max_missed_offers", c.MaxMissedOffers},
		{"Simulator", "simulator", c.Simulator},
		{"AccountSID", "account_sid", c.AccountSID},
		{"AuthToken", "auth_token", redact(c.AuthToken)},
		{"APIKey", "api_key", c.APIKey},
		{"APISecret", "api_secret", redact(c.APISecret)},
		{"Number", "number", c.Number},
		{"APIURL", "api_url", c.APIURL},
	}
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|[^&\s]+)`)

// redactDatabaseURL hides a password given either as URL user info
// (postgres://user:pw@host/db) or as a key=value DSN field (password=pw).
func redactDatabaseURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		v = u.Redacted()
	}
	return dsnPassword.ReplaceAllString(v, "${1}"+redacted)
}

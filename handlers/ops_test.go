package handlers

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestMaskPhone(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"US number", "+15551230001", "+1********01"},
		{"UK number", "+442079460018", "+4*********18"},
		{"spaced", "+44 20 7946 0018", "+4* ** **** **18"},
		{"short code masked whole", "+1234", "+****"},
		{"no digits", "client:alice", "client:alice"},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskPhone(tt.in); got != tt.want {
				t.Fatalf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskPhones(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"Twilio error text", "The 'To' number +15551230001 is not a valid phone number.", "The 'To' number +1********01 is not a valid phone number."},
		{"two numbers", "from +15551230001 to +15550100000", "from +1********01 to +1********00"},
		{"ids untouched", "call 42 leg 7 CA0123456789abcdef", "call 42 leg 7 CA0123456789abcdef"},
		{"a plus sign alone", "1 + 2", "1 + 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskPhones(tt.in); got != tt.want {
				t.Fatalf("MaskPhones(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

type numberHolder struct{ From string }

type numberValuer string

func (v numberValuer) LogValue() slog.Value { return slog.StringValue("caller " + string(v)) }

// TestMaskPhoneNumbersHandler logs a number every way slog allows: none
// reaches the output, masked forms do.
func TestMaskPhoneNumbersHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(MaskPhoneNumbers(slog.NewTextHandler(&buf, nil)))
	log = log.With("with", "+15551230001").WithGroup("g")
	log.Info("message +15551230002",
		"string", "+15551230003",
		"error", errors.New("Twilio: The 'To' number +15551230004 is not valid"),
		slog.Group("group", "inner", "+15551230005"),
		"struct", numberHolder{From: "+15551230006"},
		"valuer", numberValuer("+15551230007"),
		"count", 3,
	)
	out := buf.String()
	if strings.Contains(out, "555123000") {
		t.Fatalf("a number reached the log:\n%s", out)
	}
	for i := 1; i <= 7; i++ {
		masked := "+1********0" + string(rune('0'+i))
		if !strings.Contains(out, masked) {
			t.Errorf("log has no %s:\n%s", masked, out)
		}
	}
	if !strings.Contains(out, "g.count=3") {
		t.Errorf("other values changed:\n%s", out)
	}
	if MaskPhoneNumbers(MaskPhoneNumbers(slog.DiscardHandler)) != MaskPhoneNumbers(slog.DiscardHandler) {
		t.Error("wrapping twice should wrap once")
	}
}

func TestValidRequestID(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   string
		want bool
	}{
		{"uuid", "7f1c2a3e-5b6d-4e8f-9a0b-1c2d3e4f5a6b", true},
		{"dots and underscores", "lb.req_01", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"empty", "", false},
		{"space", "a b", false},
		{"newline", "a\nb", false},
		{"markup", "<b>", false},
		{"non-ASCII", "ïd", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validRequestID(tt.id); got != tt.want {
				t.Fatalf("validRequestID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// TestSecurityHeadersByMode checks what differs between simulator and
// Twilio mode and between http and https; the HTTP tests in internal/app
// cover the rest.
func TestSecurityHeadersByMode(t *testing.T) {
	for _, tt := range []struct {
		name       string
		deps       Deps
		route      string
		wantTwilio bool
		wantInline bool
		wantHSTS   bool
	}{
		{name: "simulator over http", deps: Deps{Simulator: true, PublicURL: "http://127.0.0.1:8080", SimHandler: http.NotFoundHandler()}, route: "/agent"},
		{name: "simulator console", deps: Deps{Simulator: true, PublicURL: "http://127.0.0.1:8080", SimHandler: http.NotFoundHandler()}, route: "/sim", wantInline: true},
		{name: "twilio over https", deps: Deps{PublicURL: "https://calls.example.com"}, route: "/agent", wantTwilio: true, wantHSTS: true},
		{name: "twilio has no console", deps: Deps{PublicURL: "https://calls.example.com"}, route: "/sim", wantTwilio: true, wantHSTS: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handlers{Deps: tt.deps}
			e := echo.New()
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodGet, tt.route, nil), rec)
			c.SetPath(tt.route)
			if err := h.securityHeaders(func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })(c); err != nil {
				t.Fatal(err)
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if got := strings.Contains(csp, "connect-src 'self' https://*.twilio.com wss://*.twilio.com;") &&
				strings.Contains(csp, "media-src 'self' https://*.twilio.com;"); got != tt.wantTwilio {
				t.Errorf("CSP reaches Twilio = %v, want %v: %s", got, tt.wantTwilio, csp)
			}
			if !tt.wantTwilio && strings.Contains(csp, "twilio") {
				t.Errorf("CSP names Twilio in simulator mode: %s", csp)
			}
			if got := strings.Contains(csp, "'unsafe-inline'"); got != tt.wantInline {
				t.Errorf("CSP allows inline styles = %v, want %v: %s", got, tt.wantInline, csp)
			}
			for _, d := range []string{"default-src 'self'", "script-src 'self';", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP lacks %q: %s", d, csp)
				}
			}
			if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tt.wantHSTS {
				t.Errorf("HSTS = %v, want %v", got, tt.wantHSTS)
			}
		})
	}
}

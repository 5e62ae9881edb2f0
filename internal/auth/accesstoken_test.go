package auth_test

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/warmtransfer/warmtransfer/internal/auth"
)

const (
	testAccountSID = "AC00000000000000000000000000000001"
	testAPIKey     = "SK00000000000000000000000000000002"
	testAPISecret  = "api-key-secret-for-tests"
	testAppSID     = "AP00000000000000000000000000000003"
)

// verifyAccessToken checks the token the way Twilio does (HS256 with the API
// secret) as of now, and returns its header and claims.
func verifyAccessToken(t *testing.T, token, secret string, now time.Time) (map[string]any, jwt.MapClaims) {
	t.Helper()
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		t.Fatalf("jwt.Parse: %v", err)
	}
	return parsed.Header, parsed.Claims.(jwt.MapClaims)
}

func TestAccessTokenClaims(t *testing.T) {
	jti := testAPIKey + "-" + strconv.FormatInt(testNow.Unix(), 10)
	exp := float64(testNow.Add(time.Hour).Unix())
	tests := []struct {
		name       string
		outgoing   string
		wantClaims map[string]any
	}{
		{
			name: "incoming only",
			wantClaims: map[string]any{
				"jti": jti, "iss": testAPIKey, "sub": testAccountSID, "exp": exp,
				"grants": map[string]any{
					"identity": "alice",
					"voice":    map[string]any{"incoming": map[string]any{"allow": true}},
				},
			},
		},
		{
			name:     "with an outgoing TwiML app",
			outgoing: testAppSID,
			wantClaims: map[string]any{
				"jti": jti, "iss": testAPIKey, "sub": testAccountSID, "exp": exp,
				"grants": map[string]any{
					"identity": "alice",
					"voice": map[string]any{
						"incoming": map[string]any{"allow": true},
						"outgoing": map[string]any{"application_sid": testAppSID},
					},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := auth.AccessTokens{
				AccountSID: testAccountSID, APIKey: testAPIKey, APISecret: testAPISecret,
				OutgoingApplicationSID: tt.outgoing,
			}
			token, ttl, err := issuer.Issue("alice", testNow)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if ttl != time.Hour {
				t.Errorf("ttl = %v, want the 1h default", ttl)
			}
			header, claims := verifyAccessToken(t, token, testAPISecret, testNow)

			wantHeader := map[string]any{"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
			if !reflect.DeepEqual(header, wantHeader) {
				t.Errorf("header = %v, want %v", header, wantHeader)
			}
			gotKeys := slices.Sorted(maps.Keys(claims))
			wantKeys := slices.Sorted(maps.Keys(tt.wantClaims))
			if !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("claim keys = %v, want exactly %v", gotKeys, wantKeys)
			}
			if !reflect.DeepEqual(map[string]any(claims), tt.wantClaims) {
				t.Errorf("claims = %v\nwant     %v", claims, tt.wantClaims)
			}
		})
	}
}

func TestAccessTokenIsBoundToTheAPISecret(t *testing.T) {
	issuer := auth.AccessTokens{AccountSID: testAccountSID, APIKey: testAPIKey, APISecret: testAPISecret}
	token, _, err := issuer.Issue("alice", testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, err = jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte("another secret"), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return testNow }))
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("verifying with another secret: %v, want a signature error", err)
	}
}

func TestAccessTokenTTL(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		want    time.Duration
		wantErr bool
	}{
		{name: "zero means one hour", ttl: 0, want: time.Hour},
		{name: "five minutes", ttl: 5 * time.Minute, want: 5 * time.Minute},
		{name: "24 hours is the maximum", ttl: 24 * time.Hour, want: 24 * time.Hour},
		{name: "a second over 24 hours", ttl: 24*time.Hour + time.Second, wantErr: true},
		{name: "a week", ttl: 7 * 24 * time.Hour, wantErr: true},
		{name: "negative", ttl: -time.Minute, wantErr: true},
		{name: "under a second", ttl: 500 * time.Millisecond, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := auth.AccessTokens{AccountSID: testAccountSID, APIKey: testAPIKey, APISecret: testAPISecret, TTL: tt.ttl}
			token, ttl, err := issuer.Issue("alice", testNow)
			if tt.wantErr {
				if err == nil || token != "" {
					t.Errorf("Issue = %q, %v; want an error", token, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if ttl != tt.want {
				t.Errorf("ttl = %v, want %v", ttl, tt.want)
			}
			_, claims := verifyAccessToken(t, token, testAPISecret, testNow)
			if exp, _ := claims.GetExpirationTime(); exp == nil || exp.Unix() != testNow.Add(tt.want).Unix() {
				t.Errorf("exp = %v, want %v", exp, testNow.Add(tt.want))
			}
			// Twilio rejects an expired token; so must a standard verifier.
			if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(testAPISecret), nil },
				jwt.WithValidMethods([]string{"HS256"}),
				jwt.WithTimeFunc(func() time.Time { return testNow.Add(tt.want) })); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("at exp the token verifies with %v, want expired", err)
			}
		})
	}
}

func TestAccessTokenIdentity(t *testing.T) {
	tests := []struct {
		name     string
		identity string
		wantErr  bool
	}{
		{name: "plain name", identity: "alice"},
		{name: "email-like", identity: "alice.smith@example.com"},
		{name: "underscore and hyphen", identity: "agent_7-b"},
		{name: "121 characters", identity: strings.Repeat("a", 121)},
		{name: "empty", identity: "", wantErr: true},
		{name: "122 characters", identity: strings.Repeat("a", 122), wantErr: true},
		{name: "space", identity: "alice smith", wantErr: true},
		{name: "colon, as in client:alice", identity: "client:alice", wantErr: true},
		{name: "slash", identity: "a/b", wantErr: true},
		{name: "plus", identity: "+15551234567", wantErr: true},
		{name: "non-ASCII letter", identity: "zoë", wantErr: true},
		{name: "newline", identity: "alice\n", wantErr: true},
	}
	issuer := auth.AccessTokens{AccountSID: testAccountSID, APIKey: testAPIKey, APISecret: testAPISecret}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.ValidClientIdentity(tt.identity); got == tt.wantErr {
				t.Errorf("ValidClientIdentity = %v, want %v", got, !tt.wantErr)
			}
			token, _, err := issuer.Issue(tt.identity, testNow)
			if tt.wantErr {
				if !errors.Is(err, auth.ErrInvalidIdentity) {
					t.Errorf("Issue error = %v, want ErrInvalidIdentity", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			_, claims := verifyAccessToken(t, token, testAPISecret, testNow)
			grants, _ := claims["grants"].(map[string]any)
			if grants["identity"] != tt.identity {
				t.Errorf("grants.identity = %v, want %q", grants["identity"], tt.identity)
			}
		})
	}
}

func TestAccessTokenNeedsCredentials(t *testing.T) {
	full := auth.AccessTokens{AccountSID: testAccountSID, APIKey: testAPIKey, APISecret: testAPISecret}
	tests := []struct {
		name   string
		tokens auth.AccessTokens
	}{
		{name: "no account SID", tokens: auth.AccessTokens{APIKey: full.APIKey, APISecret: full.APISecret}},
		{name: "no API key", tokens: auth.AccessTokens{AccountSID: full.AccountSID, APISecret: full.APISecret}},
		{name: "no API secret", tokens: auth.AccessTokens{AccountSID: full.AccountSID, APIKey: full.APIKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if token, _, err := tt.tokens.Issue("alice", testNow); err == nil {
				t.Errorf("Issue = %q, want an error", token)
			}
		})
	}
}

package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// bcrypt at DefaultCost takes about a second per operation under -race, so
// these tests hash at DefaultCost only where the cost is what they check, use
// bcrypt.MinCost hashes to exercise CheckPassword, and run in parallel.

func TestHashPasswordBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pw      string
		wantErr error
	}{
		{name: "empty is too short", pw: "", wantErr: ErrPasswordTooShort},
		{name: "7 bytes is too short", pw: "1234567", wantErr: ErrPasswordTooShort},
		{name: "8 bytes is accepted", pw: "12345678"},
		{name: "72 bytes is accepted", pw: strings.Repeat("x", 72)},
		{name: "73 bytes is too long", pw: strings.Repeat("x", 73), wantErr: ErrPasswordTooLong},
		// The limits are in bytes, as bcrypt counts them: "é" is two.
		{name: "3 runes of 2 bytes is too short", pw: "ééé", wantErr: ErrPasswordTooShort},
		{name: "37 runes of 2 bytes is too long", pw: strings.Repeat("é", 37), wantErr: ErrPasswordTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hash, err := HashPassword(tt.pw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("HashPassword error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if hash != "" {
					t.Errorf("HashPassword returned hash %q with an error", hash)
				}
				return
			}
			cost, err := bcrypt.Cost([]byte(hash))
			if err != nil {
				t.Fatalf("hash %q is not bcrypt: %v", hash, err)
			}
			if cost != bcrypt.DefaultCost {
				t.Errorf("cost = %d, want %d", cost, bcrypt.DefaultCost)
			}
		})
	}
}

func TestHashPasswordRoundTripWithSalt(t *testing.T) {
	t.Parallel()
	a, errA := HashPassword("correct horse")
	b, errB := HashPassword("correct horse")
	if errA != nil || errB != nil {
		t.Fatalf("HashPassword: %v, %v", errA, errB)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal (%q): no salt", a)
	}
	if !CheckPassword(a, "correct horse") || !CheckPassword(b, "correct horse") {
		t.Errorf("CheckPassword rejects the password the hash was made from")
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	long72 := strings.Repeat("p", 72)
	hash := minCostHash(t, "correct horse")
	hash72 := minCostHash(t, long72)
	tests := []struct {
		name string
		hash string
		pw   string
		want bool
	}{
		{name: "right password", hash: hash, pw: "correct horse", want: true},
		{name: "wrong password", hash: hash, pw: "correct horsE"},
		{name: "empty password", hash: hash, pw: ""},
		{name: "prefix of the password", hash: hash, pw: "correct"},
		{name: "empty hash", hash: "", pw: "correct horse"},
		{name: "malformed hash", hash: "$2a$10$nope", pw: "correct horse"},
		{name: "72-byte password", hash: hash72, pw: long72, want: true},
		// bcrypt ignores byte 73 onwards; a password that was never set must
		// not pass because its first 72 bytes match.
		{name: "73 bytes whose first 72 match", hash: hash72, pw: long72 + "!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckPassword(tt.hash, tt.pw); got != tt.want {
				t.Errorf("CheckPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

// The dummy hash must cost what real hashes cost, or EqualizeTiming would
// answer faster (or slower) than a real comparison and leak which
// identities exist.
func TestEqualizeTimingCostsAsMuchAsARealCheck(t *testing.T) {
	t.Parallel()
	cost, err := bcrypt.Cost([]byte(dummyHash))
	if err != nil {
		t.Fatalf("dummy hash is not bcrypt: %v", err)
	}
	if cost != bcrypt.DefaultCost {
		t.Errorf("dummy hash cost = %d, HashPassword uses %d", cost, bcrypt.DefaultCost)
	}
	// It must be a hash bcrypt really compares against: a malformed one
	// fails at once, without the work.
	if err := bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(strings.Repeat("z", 100))); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Errorf("comparing with the dummy hash: %v, want a plain mismatch", err)
	}
}

func minCostHash(t *testing.T, pw string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(hash)
}

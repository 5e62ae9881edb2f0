// Package auth holds the app's credentials logic with no web framework in it:
// agent passwords (bcrypt), signed session cookies and their CSRF tokens, and
// the Twilio Access Tokens that let an agent's browser phone register.
//
// Everything takes the current time as an argument so tests and handlers
// agree on "now" without sleeping or faking a clock.
package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// MinPasswordBytes is the shortest password HashPassword accepts; shorter ones
// are guessable whatever the hash cost.
const MinPasswordBytes = 8

// MaxPasswordBytes is the longest password HashPassword accepts, because
// bcrypt ignores everything after the 72nd byte and silently truncating a
// passphrase would make two different passwords equal.
const MaxPasswordBytes = 72

// ErrPasswordTooShort is returned by HashPassword for passwords under
// MinPasswordBytes, so the sign-up or reset form can say why it refused.
var ErrPasswordTooShort = errors.New("auth: password is shorter than 8 bytes")

// ErrPasswordTooLong is returned by HashPassword for passwords over
// MaxPasswordBytes, so the form can say why instead of truncating silently.
var ErrPasswordTooLong = errors.New("auth: password is longer than 72 bytes")

// dummyHash is a bcrypt hash, at bcrypt.DefaultCost, of a string nobody
// uses as a password. EqualizeTiming compares against it so that refusing
// an unknown identity costs the same bcrypt work as refusing a wrong
// password. It is a constant so start-up does not pay for hashing it.
const dummyHash = "$2a$10$5fGF7sBVfouI1.nQaGoo7ufwDR8Qzx8tFYN6JO3gQMxnLo.cq4/9q"

// HashPassword returns the bcrypt hash of pw to store for an agent. It
// refuses passwords outside [MinPasswordBytes, MaxPasswordBytes] with
// ErrPasswordTooShort or ErrPasswordTooLong.
func HashPassword(pw string) (string, error) {
	switch {
	case len(pw) < MinPasswordBytes:
		return "", ErrPasswordTooShort
	case len(pw) > MaxPasswordBytes:
		return "", ErrPasswordTooLong
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(hash), nil
}

// CheckPassword reports whether pw matches the stored bcrypt hash. A malformed
// hash or a password HashPassword would never have accepted counts as a
// mismatch, so callers have a single yes/no to act on.
func CheckPassword(hash, pw string) bool {
	matches := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
	// An over-long password is refused after the comparison, not before it:
	// bcrypt looks only at the first 72 bytes and could say yes to a password
	// that was never set, and answering early would make a known identity
	// answer faster than EqualizeTiming does for an unknown one.
	return matches && len(pw) <= MaxPasswordBytes
}

// EqualizeTiming does the bcrypt work of one CheckPassword and throws the
// result away. Sign-in calls it when the identity does not exist, so the
// response time does not tell an attacker which identities are real.
func EqualizeTiming(pw string) {
	_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(pw))
}

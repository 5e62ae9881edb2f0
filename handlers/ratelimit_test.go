package handlers

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// attempt starts a sign-in and checks how long it is told to wait.
func attempt(t *testing.T, l *SignInLimiter, ip, identity string, want time.Duration) {
	t.Helper()
	if got := l.Attempt(ip, identity); got != want {
		t.Fatalf("Attempt(%q, %q) = %s, want %s", ip, identity, got, want)
	}
}

func TestSignInLimiterPerIdentity(t *testing.T) {
	clock := newFakeClock()
	l := NewSignInLimiter(SignInLimits{Now: clock.Now})
	const ip = "192.0.2.1"

	// Five failures a minute apart: then alice is locked until the first
	// leaves the 15-minute window, whatever the case or the address.
	for i := range 5 {
		attempt(t, l, ip, "alice", 0)
		if i < 4 {
			clock.Advance(time.Minute)
		}
	}
	attempt(t, l, ip, "alice", 11*time.Minute)
	attempt(t, l, ip, "ALICE", 11*time.Minute)
	attempt(t, l, "198.51.100.7", "alice", 11*time.Minute)
	attempt(t, l, ip, "bob", 0)

	// The window slides: once the first failure is 15 minutes old, one more
	// try is allowed, and its failure locks alice until the second ages.
	clock.Advance(11*time.Minute - time.Second)
	attempt(t, l, ip, "alice", time.Second)
	clock.Advance(time.Second)
	attempt(t, l, ip, "alice", 0)
	attempt(t, l, ip, "alice", time.Minute)

	// Long after, nothing is held against alice.
	clock.Advance(15 * time.Minute)
	attempt(t, l, ip, "alice", 0)
}

func TestSignInLimiterSuccessClearsIdentityOnly(t *testing.T) {
	clock := newFakeClock()
	l := NewSignInLimiter(SignInLimits{Now: clock.Now, IPFailures: 8})
	const ip = "192.0.2.1"
	for range 4 {
		attempt(t, l, ip, "alice", 0)
	}
	// The fifth is right: alice's failures are forgotten, and the attempt
	// itself is not held against the address.
	attempt(t, l, ip, "alice", 0)
	l.Succeeded(ip, "alice")
	for range 4 {
		attempt(t, l, ip, "alice", 0)
	}
	// Eight failures from the address: it is limited although alice's own
	// budget (4 of 5 since she signed in) is not spent.
	attempt(t, l, ip, "alice", time.Minute)
	attempt(t, l, ip, "bob", time.Minute)
	attempt(t, l, "192.0.2.2", "alice", 0)
}

func TestSignInLimiterPerIP(t *testing.T) {
	clock := newFakeClock()
	l := NewSignInLimiter(SignInLimits{Now: clock.Now})
	const ip = "192.0.2.1"
	for i := range 20 {
		attempt(t, l, ip, "guess"+strconv.Itoa(i), 0)
		clock.Advance(time.Second)
	}
	attempt(t, l, ip, "alice", 40*time.Second)
	attempt(t, l, "192.0.2.2", "alice", 0)
	clock.Advance(40 * time.Second)
	attempt(t, l, ip, "alice", 0)
}

// TestSignInLimiterParallelGuesses sends fifty guesses at once: exactly
// five are let through to the password check.
func TestSignInLimiterParallelGuesses(t *testing.T) {
	l := NewSignInLimiter(SignInLimits{IPFailures: 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Go(func() {
			if l.Attempt("192.0.2.1", "alice") == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 5 {
		t.Fatalf("%d of 50 parallel guesses were let through, want 5", allowed)
	}
}

func TestSlidingLimiterBoundsMemory(t *testing.T) {
	clock := newFakeClock()
	l := newSlidingLimiter(2, time.Minute, 3, clock.Now)

	for _, tt := range []struct {
		name    string
		advance time.Duration
		add     []string
		tracked int
		limited map[string]bool
	}{
		{name: "up to the cap", add: []string{"b", "b", "c", "a", "a"}, tracked: 3, limited: map[string]bool{"a": true, "b": true, "c": false}},
		// The cap is reached: the key whose last event is oldest (b) goes,
		// and with it its limit.
		{name: "a new key evicts the stalest", add: []string{"d"}, tracked: 3, limited: map[string]bool{"a": true, "b": false}},
		// Past the window every key has expired; the next call prunes them.
		{name: "expired keys are pruned", advance: 2 * time.Minute, add: []string{"e"}, tracked: 1, limited: map[string]bool{"a": false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			for _, k := range tt.add {
				l.add(k)
				clock.Advance(time.Second)
			}
			if got := l.tracked(); got != tt.tracked {
				t.Fatalf("tracking %d keys, want %d", got, tt.tracked)
			}
			for k, want := range tt.limited {
				if got := l.retryAfter(k) > 0; got != want {
					t.Errorf("%q limited = %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestSignInLimiterConcurrentUse(t *testing.T) {
	l := NewSignInLimiter(SignInLimits{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ip := "192.0.2." + strconv.Itoa(i)
			for j := range 100 {
				id := "user" + strconv.Itoa(j%7)
				if l.Attempt(ip, id) == 0 && j%10 == 0 {
					l.Succeeded(ip, id)
				}
			}
		})
	}
	wg.Wait()
	if l.Attempt("192.0.2.0", "user1") == 0 {
		t.Fatal("a hundred attempts from one address left it unlimited")
	}
}

package handlers

import (
	"strings"
	"sync"
	"time"
)

// SignInLimits tune sign-in rate limiting. The zero value of a field means
// its default.
type SignInLimits struct {
	// IdentityFailures wrong passwords for one identity within
	// IdentityWindow lock that identity until the oldest of them is out of
	// the window (default 5 per 15 minutes).
	IdentityFailures int
	IdentityWindow   time.Duration
	// IPFailures failed sign-ins from one client address within IPWindow
	// lock that address (default 20 per minute).
	IPFailures int
	IPWindow   time.Duration
	// MaxKeys caps how many identities and addresses each limiter tracks
	// (default 10,000), so a flood of made-up identities cannot exhaust
	// memory.
	MaxKeys int
	// Now is the clock; tests advance their own.
	Now func() time.Time
}

func (l SignInLimits) withDefaults() SignInLimits {
	if l.IdentityFailures <= 0 {
		l.IdentityFailures = 5
	}
	if l.IdentityWindow <= 0 {
		l.IdentityWindow = 15 * time.Minute
	}
	if l.IPFailures <= 0 {
		l.IPFailures = 20
	}
	if l.IPWindow <= 0 {
		l.IPWindow = time.Minute
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 10_000
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	return l
}

// SignInLimiter slows password guessing: per identity (a targeted guess at
// one account) and per client address (spraying many accounts). While
// either is limited a sign-in is refused without looking at the password,
// so a guess made while limited learns nothing.
//
// It counts failures, not attempts: a whole team signing in at shift start
// from one office address (NAT) is never limited, only wrong passwords are.
// Each attempt is counted as a failure when it starts and forgiven when it
// succeeds, so guesses sent in parallel cannot all slip in before the
// first of them is counted.
//
// The state is in memory: each instance behind a load balancer limits on
// its own, so N instances allow up to N times the configured rate. That
// still bounds guessing; a shared store would be needed for an exact limit.
type SignInLimiter struct {
	mu       sync.Mutex // makes check-and-count one step across both limiters
	identity *slidingLimiter
	ip       *slidingLimiter
}

// NewSignInLimiter returns a limiter with limits (zero fields take their
// defaults).
func NewSignInLimiter(limits SignInLimits) *SignInLimiter {
	l := limits.withDefaults()
	return &SignInLimiter{
		identity: newSlidingLimiter(l.IdentityFailures, l.IdentityWindow, l.MaxKeys, l.Now),
		ip:       newSlidingLimiter(l.IPFailures, l.IPWindow, l.MaxKeys, l.Now),
	}
}

// Attempt starts a sign-in from ip for identity. When either is limited it
// returns how long to wait and counts nothing; otherwise it returns zero
// and counts the attempt as a failure until Succeeded forgives it.
func (s *SignInLimiter) Attempt(ip, identity string) time.Duration {
	key := identityKey(identity)
	s.mu.Lock()
	defer s.mu.Unlock()
	if wait := max(s.ip.retryAfter(ip), s.identity.retryAfter(key)); wait > 0 {
		return wait
	}
	s.ip.add(ip)
	s.identity.add(key)
	return 0
}

// Succeeded forgets the identity's failures, since whoever knows the
// password starts afresh, and un-counts this attempt from the address. The
// address's other failures stay, so one good account cannot launder
// guesses at others.
func (s *SignInLimiter) Succeeded(ip, identity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identity.reset(identityKey(identity))
	s.ip.removeLatest(ip)
}

// identityKey folds case so "Alice" and "alice" share one budget, and
// bounds the key's size (identities are at most 128 bytes).
func identityKey(identity string) string {
	if len(identity) > 128 {
		identity = identity[:128]
	}
	return strings.ToLower(identity)
}

// slidingLimiter allows limit events per key within any window: it keeps
// the times of the last limit events of each key (a sliding log).
type slidingLimiter struct {
	limit   int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	keys      map[string]*eventLog
	lastPrune time.Time
}

type eventLog struct {
	times []time.Time // oldest first, at most limit
}

func newSlidingLimiter(limit int, window time.Duration, maxKeys int, now func() time.Time) *slidingLimiter {
	return &slidingLimiter{limit: limit, window: window, maxKeys: maxKeys, now: now, keys: map[string]*eventLog{}}
}

// retryAfter is how long until key may act again; zero when it may now.
func (l *slidingLimiter) retryAfter(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pruneLocked(now)
	e := l.keys[key]
	if e == nil {
		return 0
	}
	e.expire(now, l.window)
	if len(e.times) < l.limit {
		return 0
	}
	return e.times[0].Add(l.window).Sub(now)
}

// add records an event for key.
func (l *slidingLimiter) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pruneLocked(now)
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= l.maxKeys {
			l.evictLocked(now)
		}
		e = &eventLog{times: make([]time.Time, 0, l.limit)}
		l.keys[key] = e
	}
	e.expire(now, l.window)
	if len(e.times) == l.limit {
		e.times = append(e.times[:0], e.times[1:]...)
	}
	e.times = append(e.times, now)
}

// removeLatest un-counts key's latest event.
func (l *slidingLimiter) removeLatest(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		return
	}
	if e.times = e.times[:len(e.times)-1]; len(e.times) == 0 {
		delete(l.keys, key)
	}
}

func (l *slidingLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// tracked is the number of keys held, for tests.
func (l *slidingLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// pruneLocked drops keys with nothing left in the window, at most once per
// window: pruning rides on the limiter's own calls, so there is no
// goroutine to start and stop.
func (l *slidingLimiter) pruneLocked(now time.Time) {
	if now.Sub(l.lastPrune) < l.window {
		return
	}
	l.lastPrune = now
	for k, e := range l.keys {
		if e.expire(now, l.window); len(e.times) == 0 {
			delete(l.keys, k)
		}
	}
}

// evictLocked makes room for a new key when the cap is reached: first the
// expired keys, and if every key is still live, the one whose latest event
// is oldest (the least likely to be limited anyway).
func (l *slidingLimiter) evictLocked(now time.Time) {
	l.lastPrune = time.Time{}
	l.pruneLocked(now)
	if len(l.keys) < l.maxKeys {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, e := range l.keys {
		if last := e.times[len(e.times)-1]; oldestKey == "" || last.Before(oldest) {
			oldestKey, oldest = k, last
		}
	}
	delete(l.keys, oldestKey)
}

// expire drops the events that have left the window.
func (e *eventLog) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(e.times) && !now.Before(e.times[i].Add(window)) {
		i++
	}
	if i > 0 {
		e.times = append(e.times[:0], e.times[i:]...)
	}
}

package callflow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/models"
)

// Errors a manager can cause while administering agents; handlers turn them
// into 4xx answers.
var (
	ErrNoSuchAgent   = errors.New("no such agent")
	ErrIdentityTaken = errors.New("an agent with that identity already exists")
	ErrBadIdentity   = fmt.Errorf("the identity must be 1 to %d letters, digits or _ . - @ (it is the browser phone's address)", auth.MaxClientIdentityLength)
	ErrBadName       = fmt.Errorf("the name must be 1 to %d characters", MaxAgentNameLength)
	ErrBadRole       = errors.New("the role must be agent or manager")
	ErrPasswordShort = fmt.Errorf("the password must be at least %d characters", auth.MinPasswordBytes)
	ErrPasswordLong  = fmt.Errorf("the password must be at most %d bytes", auth.MaxPasswordBytes)
	ErrDisableSelf   = errors.New("you cannot disable your own account")
)

// MaxAgentNameLength bounds an agent's display name, in characters.
const MaxAgentNameLength = 100

// What a manager did to an agent: the "admin" field of the agent.presence
// event each change appends. The change is an agent.presence event so that
// everything that follows presence (the board's agent list, colleagues'
// transfer lists) updates live with no new kind to learn.
const (
	AdminAdded         = "added"
	AdminDisabled      = "disabled"
	AdminEnabled       = "enabled"
	AdminPasswordReset = "password_reset"
)

// NewAgent is a person a manager adds.
type NewAgent struct {
	Identity string
	Name     string
	// Role is RoleAgent when empty.
	Role     models.Role
	Password string
}

// AdminAgent is an agent as the administration page shows them.
type AdminAgent struct {
	AgentSummary
	// Call is the call ringing the agent's phone or the one they are on,
	// if any; CallLeg (LegRinging or LegJoined) says which.
	Call    *CallSummary
	CallLeg models.LegState
}

// AdminAgents returns every agent and manager, disabled ones included, by
// identity, with the call each is on.
func (s *Service) AdminAgents(ctx context.Context) ([]AdminAgent, error) {
	list, err := models.ListAgents(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("callflow: admin agents: %w", err)
	}
	out := make([]AdminAgent, 0, len(list))
	for i := range list {
		a := &list[i]
		row := AdminAgent{AgentSummary: summarizeAgent(a)}
		leg, err := models.ActiveLegForAgent(ctx, s.db, a.ID)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return nil, fmt.Errorf("callflow: admin agents: %w", err)
		}
		if leg != nil {
			call, err := models.CallByID(ctx, s.db, leg.CallID)
			if err != nil {
				return nil, fmt.Errorf("callflow: admin agents: %w", err)
			}
			row.CallID, row.CallLeg = call.ID, leg.State
			row.Call = &CallSummary{ID: call.ID, From: call.FromNumber, CallerName: call.CallerName, State: call.State, CreatedAt: call.CreatedAt, AnsweredAt: call.AnsweredAt}
		}
		out = append(out, row)
	}
	return out, nil
}

// AddAgent creates an agent or manager who can sign in at once with the
// given password. They start offline: signing in makes an agent available.
// by is the manager doing it, recorded in the event.
func (s *Service) AddAgent(ctx context.Context, by string, na NewAgent) (*models.Agent, error) {
	na.Identity, na.Name = strings.TrimSpace(na.Identity), strings.TrimSpace(na.Name)
	if na.Role == "" {
		na.Role = models.RoleAgent
	}
	switch {
	case !auth.ValidClientIdentity(na.Identity):
		return nil, ErrBadIdentity
	case !validName(na.Name):
		return nil, ErrBadName
	case !na.Role.Valid():
		return nil, ErrBadRole
	}
	// Hashing is slow on purpose: it is done before the transaction, which
	// must stay short.
	hash, err := hashPassword(na.Password)
	if err != nil {
		return nil, err
	}
	a := &models.Agent{Identity: na.Identity, Name: na.Name, Role: na.Role, PasswordHash: hash, Presence: models.PresenceOffline}
	err = s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		a.ID = 0
		if _, err := models.AgentByIdentityFold(ctx, tx, na.Identity); err == nil {
			return ErrIdentityTaken
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if err := models.CreateAgent(ctx, tx, a); errors.Is(err, models.ErrDuplicate) {
			return ErrIdentityTaken // added concurrently
		} else if err != nil {
			return err
		}
		rec.add(EventPresence, 0, a.ID, map[string]any{"presence": a.Presence, "admin": AdminAdded, "by": by})
		return nil
	})
	if err != nil {
		return nil, adminErr("add agent", err)
	}
	return a, nil
}

// DisableAgent stops an agent (or another manager) from working: they are
// signed out everywhere, cannot sign in, and are offered no calls.
//
// A call the agent is on goes on until it ends: cutting off a customer
// mid-sentence is worse than letting a departing agent finish. Their presence
// becomes offline at once, so nothing makes them available again when that
// call ends (only a busy agent is freed) and routing skips them meanwhile (it
// also skips disabled agents outright). A call only ringing their phone is
// not theirs yet: it is taken back and offered to someone else, as a transfer
// ringing them fails back to the colleague who started it.
func (s *Service) DisableAgent(ctx context.Context, by, identity string) error {
	if identity == by {
		return ErrDisableSelf
	}
	var stopRinging []string
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		a, offer, err := s.lockAgentAndOffer(ctx, tx, identity)
		if err != nil {
			return err
		}
		if a.Disabled {
			return nil // already: nothing to do, nothing to tell
		}
		a.Disabled = true
		if stopRinging, err = s.signOutEverywhere(ctx, tx, rec, a, offer, "disabled"); err != nil {
			return err
		}
		rec.add(EventPresence, 0, a.ID, map[string]any{"presence": a.Presence, "admin": AdminDisabled, "by": by})
		return nil
	})
	if err != nil {
		return adminErr("disable agent", err)
	}
	s.takeBackOffers(ctx, stopRinging)
	return nil
}

// EnableAgent lets a disabled agent sign in again. They stay offline until
// they do.
func (s *Service) EnableAgent(ctx context.Context, by, identity string) error {
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		a, err := models.LockAgent(ctx, tx, identity)
		if err != nil {
			return err
		}
		if !a.Disabled {
			return nil
		}
		a.Disabled = false
		if err := models.UpdateAgent(ctx, tx, a, "disabled"); err != nil {
			return err
		}
		rec.add(EventPresence, 0, a.ID, map[string]any{"presence": a.Presence, "admin": AdminEnabled, "by": by})
		return nil
	})
	return adminErr("enable agent", err)
}

// ResetPassword gives an agent a new password and signs them out
// everywhere, as signing out would: offline, a call they are on goes on, a
// call ringing them goes to someone else. An empty password means "generate
// one"; the password set is returned so the manager can pass it on, and is
// kept nowhere else.
func (s *Service) ResetPassword(ctx context.Context, by, identity, password string) (string, error) {
	if password == "" {
		password = GeneratePassword()
	}
	hash, err := hashPassword(password)
	if err != nil {
		return "", err
	}
	var stopRinging []string
	err = s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		a, offer, err := s.lockAgentAndOffer(ctx, tx, identity)
		if err != nil {
			return err
		}
		a.PasswordHash = hash
		if stopRinging, err = s.signOutEverywhere(ctx, tx, rec, a, offer, "password_hash"); err != nil {
			return err
		}
		rec.add(EventPresence, 0, a.ID, map[string]any{"presence": a.Presence, "admin": AdminPasswordReset, "by": by})
		return nil
	})
	if err != nil {
		return "", adminErr("reset password", err)
	}
	s.takeBackOffers(ctx, stopRinging)
	return password, nil
}

// ringingOffer is a call ringing an agent's phone, locked.
type ringingOffer struct {
	call *models.Call
	leg  *models.Leg
}

// lockAgentAndOffer locks an agent and, if a call is ringing their phone,
// that call (nil otherwise). The call is locked before the agent, as
// everywhere in the call flow, so that two transactions never deadlock.
func (s *Service) lockAgentAndOffer(ctx context.Context, tx bun.Tx, identity string) (*models.Agent, *ringingOffer, error) {
	a, err := models.AgentByIdentity(ctx, tx, identity)
	if err != nil {
		return nil, nil, err
	}
	var o *ringingOffer
	leg, err := models.ActiveLegForAgent(ctx, tx, a.ID)
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return nil, nil, err
	case leg.State == models.LegRinging:
		call, err := models.LockCall(ctx, tx, leg.CallID)
		if err != nil {
			return nil, nil, err
		}
		// Read again under the call's lock: the phone may have been
		// answered or have stopped ringing meanwhile.
		if leg, err = models.LegByID(ctx, tx, leg.ID); err != nil {
			return nil, nil, err
		}
		if leg.State == models.LegRinging {
			o = &ringingOffer{call: call, leg: leg}
		}
	}
	if a, err = models.LockAgent(ctx, tx, identity); err != nil {
		return nil, nil, err
	}
	return a, o, nil
}

// signOutEverywhere invalidates every session of a (their cookies carry the
// old epoch), takes them off routing, and writes the given columns too. A
// call ringing them is taken back (the caller waits for the next agent, a
// transfer fails back to its colleague); it returns the phone calls to
// stop once committed. A call they are on is left alone.
func (s *Service) signOutEverywhere(ctx context.Context, tx bun.Tx, rec *recorder, a *models.Agent, o *ringingOffer, columns ...string) ([]string, error) {
	a.SessionEpoch++
	if a.Presence != models.PresenceOffline {
		a.Presence, a.PresenceSince = models.PresenceOffline, s.now()
	}
	if err := models.UpdateAgent(ctx, tx, a, append(columns, "session_epoch", "presence", "presence_since")...); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, nil
	}
	// Offline already, so this does not make them available again.
	if err := s.legEndedUnanswered(ctx, tx, rec, o.call, o.leg, models.LegCanceled); err != nil {
		return nil, err
	}
	return []string{o.leg.CallSID}, nil
}

// takeBackOffers stops phones that were ringing for an agent who can no
// longer take the call, and offers the callers to someone else.
func (s *Service) takeBackOffers(ctx context.Context, sids []string) {
	if len(sids) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.endCalls(ctx, sids)
	s.Dispatch(ctx)
}

// adminErr maps "no such row" to ErrNoSuchAgent and prefixes the rest.
func adminErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, models.ErrNotFound):
		return ErrNoSuchAgent
	case errors.Is(err, ErrIdentityTaken), errors.Is(err, ErrDisableSelf):
		return err
	}
	return fmt.Errorf("callflow: %s: %w", op, err)
}

func hashPassword(pw string) (string, error) {
	hash, err := auth.HashPassword(pw)
	switch {
	case errors.Is(err, auth.ErrPasswordTooShort):
		return "", ErrPasswordShort
	case errors.Is(err, auth.ErrPasswordTooLong):
		return "", ErrPasswordLong
	case err != nil:
		return "", fmt.Errorf("callflow: %w", err)
	}
	return hash, nil
}

// validName accepts a display name of printable characters.
func validName(name string) bool {
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxAgentNameLength {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// passwordAlphabet has no characters that read alike (0/O, 1/l/I), since a
// generated password is read out or copied by hand.
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassword returns a random password of 16 characters from a
// 56-character alphabet (about 93 bits), in groups of four for reading out.
func GeneratePassword() string {
	var b strings.Builder
	buf := make([]byte, 1)
	for n := 0; n < 16; {
		_, _ = rand.Read(buf) // never fails: it crashes the program instead
		// Rejection sampling keeps every character equally likely.
		if int(buf[0]) >= 256-256%len(passwordAlphabet) {
			continue
		}
		if n > 0 && n%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
		n++
	}
	return b.String()
}

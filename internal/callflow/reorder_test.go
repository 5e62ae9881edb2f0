package callflow_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// scriptedTwilio answers the call flow as Twilio answered it when the
// webhooks being replayed were recorded: the same CallSids for the same
// rings. A replay cannot ring real phones, so this is the one stand-in in
// these tests; it also counts every ring, so a second offer cannot hide.
type scriptedTwilio struct {
	mu    sync.Mutex
	sids  map[string]string // identity -> CallSid to answer with
	rings []string
	// hungUp is set once the caller has hung up in the recording: from
	// then on Twilio says their call completed and they are not in the
	// conference any more.
	hungUp bool
}

func (s *scriptedTwilio) Ring(_ context.Context, r callflow.RingRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rings = append(s.rings, r.Identity)
	return s.sids[r.Identity], nil
}
func (s *scriptedTwilio) EndCall(context.Context, string) error       { return nil }
func (s *scriptedTwilio) EndConference(context.Context, string) error { return nil }
func (s *scriptedTwilio) AddParticipant(context.Context, callflow.ParticipantRequest) (string, error) {
	return "", fmt.Errorf("not in the script")
}

func (s *scriptedTwilio) SetEndConferenceOnExit(context.Context, string, string, bool) error {
	return nil
}
func (s *scriptedTwilio) Hold(_ context.Context, _, callSID string, _ bool, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hungUp && callSID == customerSID {
		return callflow.ErrGone
	}
	return nil
}

func (s *scriptedTwilio) CallStatus(_ context.Context, callSID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hungUp {
		return "completed", nil
	}
	return "in-progress", nil
}

type urls struct{}

func (urls) Wait() string { return "https://example.test/conference/wait" }
func (urls) AgentConnect(id int64) string {
	return "https://example.test/conference/connect/agent?leg=" + strconv.FormatInt(id, 10)
}
func (urls) CallStatus(id int64) string {
	return "https://example.test/voice/status?leg=" + strconv.FormatInt(id, 10)
}
func (urls) ConferenceStatus() string     { return "https://example.test/voice/conference" }
func (nopPublisher) Publish(models.Event) {}

type nopPublisher struct{}

const (
	customerSID = "CA00000000000000000000000000000c01"
	aliceSID    = "CA00000000000000000000000000000a01"
	bobSID      = "CA00000000000000000000000000000b01"
	confSID     = "CF00000000000000000000000000000f01"
	confName    = "call-" + customerSID
)

// templateDB makes a migrated database with Alice and Bob available (Alice
// first, so she is offered the call), to be copied for each ordering.
func templateDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.db")
	db, err := models.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	hash, _ := auth.HashPassword("not-used-here")
	for i, id := range []string{"alice", "bob"} {
		a := &models.Agent{Identity: id, Name: id, Role: models.RoleAgent, PasswordHash: hash, Presence: models.PresenceAvailable,
			PresenceSince: time.Now().Add(time.Duration(i-10) * time.Minute)}
		if err := models.CreateAgent(ctx, db, a); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return path
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
}

// step is one thing the call flow is told: an action of an agent or a
// TwiML request (anchors, in the order they happened), or a status
// callback, which Twilio may deliver late, early among others, or twice.
type step struct {
	name  string
	cause int // index of the anchor that must come before it
	run   func(ctx context.Context, s *callflow.Service, legs map[string]int64) error
}

func conf(event, seq, callSID string, endOnExit bool) func(context.Context, *callflow.Service, map[string]int64) error {
	return func(ctx context.Context, s *callflow.Service, _ map[string]int64) error {
		return s.ConferenceEvent(ctx, callflow.ConferenceEvent{
			ConferenceSID: confSID, FriendlyName: confName, Event: event, Sequence: seq, CallSID: callSID,
			EndOnExit: endOnExit, ReasonEnded: map[bool]string{true: "participant-with-end-conference-on-exit-left"}[event == "conference-end"],
			CallSIDEnding: map[bool]string{true: customerSID}[event == "conference-end"],
		})
	}
}

func status(who, sid, st string) func(context.Context, *callflow.Service, map[string]int64) error {
	return func(ctx context.Context, s *callflow.Service, legs map[string]int64) error {
		return s.CallStatus(ctx, callflow.CallStatus{CallSID: sid, Status: st, LegID: legs[who]})
	}
}

// seedsFlow is the warm transfer as Twilio reports it: anchors 0-5 are the
// caller's TwiML request, Alice answering, her transfer, Bob answering, her
// leaving, and the caller hanging up.
func seedsFlow() (anchors []step, callbacks []step) {
	anchors = []step{
		{name: "incoming call", run: func(ctx context.Context, s *callflow.Service, _ map[string]int64) error {
			_, err := s.IncomingCall(ctx, callflow.Inbound{CallSID: customerSID, From: "+15551230001", To: "+15550100000"})
			return err
		}},
		{name: "alice answers", run: func(ctx context.Context, s *callflow.Service, legs map[string]int64) error {
			ins, err := s.AgentConnect(ctx, legs["alice"], aliceSID)
			if err == nil && ins.Join == nil {
				err = fmt.Errorf("alice was not joined: %q", ins.Say)
			}
			return err
		}},
		{name: "alice transfers to bob", run: func(ctx context.Context, s *callflow.Service, _ map[string]int64) error {
			_, err := s.Transfer(ctx, "alice", 1, "bob")
			return err
		}},
		{name: "bob answers", run: func(ctx context.Context, s *callflow.Service, legs map[string]int64) error {
			ins, err := s.AgentConnect(ctx, legs["bob"], bobSID)
			if err == nil && ins.Join == nil {
				err = fmt.Errorf("bob was not joined: %q", ins.Say)
			}
			return err
		}},
		{name: "alice leaves", run: func(ctx context.Context, s *callflow.Service, _ map[string]int64) error {
			return s.Leave(ctx, "alice", 1)
		}},
		{name: "the caller hangs up"}, // Twilio's side only; run in replay
	}
	callbacks = []step{
		{"alice ringing", 0, status("alice", aliceSID, "ringing")},
		{"customer joins", 0, conf("participant-join", "1", customerSID, true)},
		{"alice in progress", 1, status("alice", aliceSID, "in-progress")},
		{"alice joins", 1, conf("participant-join", "2", aliceSID, false)},
		{"conference starts", 1, conf("conference-start", "3", "", false)},
		{"bob ringing", 2, status("bob", bobSID, "ringing")},
		{"bob in progress", 3, status("bob", bobSID, "in-progress")},
		{"bob joins", 3, conf("participant-join", "4", bobSID, false)},
		{"bob modified", 4, conf("participant-modify", "5", bobSID, true)},
		{"alice leaves the conference", 4, conf("participant-leave", "6", aliceSID, false)},
		{"alice completed", 4, status("alice", aliceSID, "completed")},
		{"customer leaves", 5, conf("participant-leave", "7", customerSID, true)},
		{"bob leaves", 5, conf("participant-leave", "8", bobSID, true)},
		{"conference ends", 5, conf("conference-end", "9", "", false)},
		{"bob completed", 5, status("bob", bobSID, "completed")},
		{"customer completed", 5, status("customer", customerSID, "completed")},
	}
	return anchors, callbacks
}

// schedule puts the anchors in order and every callback at a random place
// after its cause, some twice.
func schedule(r *rand.Rand, anchors, callbacks []step) []step {
	out := append([]step(nil), anchors...)
	insert := func(cb step) {
		pos := 0
		for i, s := range out {
			if s.name == anchors[cb.cause].name {
				pos = i + 1
			}
		}
		at := pos + r.IntN(len(out)-pos+1)
		out = append(out[:at], append([]step{cb}, out[at:]...)...)
	}
	for _, cb := range callbacks {
		insert(cb)
		if r.IntN(10) < 3 {
			insert(cb) // Twilio retried it, or sent it twice
		}
	}
	return out
}

// TestReorderedAndDuplicatedCallbacks replays the warm transfer's callbacks
// in 1,000 random orders, some twice: no agent is ever rung twice, and the
// call always ends the same, right way.
func TestReorderedAndDuplicatedCallbacks(t *testing.T) {
	template := templateDB(t)
	anchors, callbacks := seedsFlow()
	dir := t.TempDir()
	for i := range orderings {
		seed := uint64(i)
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		steps := schedule(r, anchors, callbacks)
		path := filepath.Join(dir, fmt.Sprintf("run%d.db", i))
		copyFile(t, template, path)
		if !replay(t, path, seed, steps) {
			return
		}
		os.Remove(path)
	}
}

func replay(t *testing.T, path string, seed uint64, steps []step) bool {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tw := &scriptedTwilio{sids: map[string]string{"alice": aliceSID, "bob": bobSID}}
	svc := callflow.New(db, tw, urls{}, nopPublisher{}, callflow.Config{Number: "+15550100000"}, nil)
	var order []string
	legs := map[string]int64{}
	fail := func(format string, args ...any) bool {
		t.Errorf("seed %d, order %v: "+format, append([]any{seed, order}, args...)...)
		return false
	}
	for _, s := range steps {
		order = append(order, s.name)
		if s.run == nil {
			tw.mu.Lock()
			tw.hungUp = true
			tw.mu.Unlock()
			continue
		}
		if err := s.run(ctx, svc, legs); err != nil {
			return fail("%s: %v", s.name, err)
		}
		// The connect URLs Twilio was given carry each leg's id.
		for _, who := range []string{"alice", "bob"} {
			if legs[who] == 0 {
				a, _ := models.AgentByIdentity(ctx, db, who)
				if l, err := models.LatestLegForAgent(ctx, db, a.ID); err == nil {
					legs[who] = l.ID
				}
			}
		}
	}
	if len(tw.rings) != 2 || tw.rings[0] != "alice" || tw.rings[1] != "bob" {
		return fail("rang %v, want [alice bob]", tw.rings)
	}
	call, err := models.CallBySID(ctx, db, customerSID)
	if err != nil {
		return fail("%v", err)
	}
	bob, _ := models.AgentByIdentity(ctx, db, "bob")
	if call.State != models.CallEnded || call.EndedBy != "customer" || call.AnsweredAt.IsZero() || call.AgentID != bob.ID {
		return fail("call = %+v", call)
	}
	for who, id := range legs {
		l, err := models.LegByID(ctx, db, id)
		if err != nil || l.State != models.LegLeft || l.JoinedAt.IsZero() {
			return fail("%s's leg = %+v, %v", who, l, err)
		}
	}
	tr, err := models.LatestTransferForCall(ctx, db, call.ID)
	if err != nil || tr.State != models.TransferCompleted {
		return fail("transfer = %+v, %v", tr, err)
	}
	for _, who := range []string{"alice", "bob"} {
		a, _ := models.AgentByIdentity(ctx, db, who)
		if a.Presence != models.PresenceAvailable {
			return fail("%s is %s after the call", who, a.Presence)
		}
	}
	events, _ := models.EventsForCall(ctx, db, call.ID)
	count := map[string]int{}
	for _, e := range events {
		count[e.Kind]++
	}
	for _, kind := range []string{callflow.EventCallEnded, callflow.EventCallAnswered, callflow.EventTransferCompleted, callflow.EventCallOffered} {
		if count[kind] != 1 {
			return fail("%d %s events, want 1 (%v)", count[kind], kind, count)
		}
	}
	return true
}

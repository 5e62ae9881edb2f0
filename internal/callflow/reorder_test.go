package callflow_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
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
	// connectURL and statusURL are the URLs each agent's ring gave
	// Twilio, which its webhooks for that call are then sent to.
	connectURL, statusURL map[string]string
	// hungUp is set once the caller has hung up in the recording: from
	// then on Twilio says their call completed and they are not in the
	// conference any more.
	hungUp bool
}

func (s *scriptedTwilio) Ring(_ context.Context, r callflow.RingRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rings = append(s.rings, r.Identity)
	s.connectURL[r.Identity] = r.URL
	s.statusURL[r.Identity] = r.StatusCallback
	return s.sids[r.Identity], nil
}

// legs are the leg ids in the URLs Twilio was given to call about who's
// call: its connect and its status callback.
func (s *scriptedTwilio) legs(who string) (connect, status int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return legParam(s.connectURL[who]), legParam(s.statusURL[who])
}

// legParam is the leg id in an app URL, 0 if it has none.
func legParam(rawURL string) int64 {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0
	}
	id, _ := strconv.ParseInt(u.Query().Get("leg"), 10, 64)
	return id
}

// restart is the script's start again, for the next ordering.
func (s *scriptedTwilio) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rings = nil
	s.connectURL = map[string]string{}
	s.statusURL = map[string]string{}
	s.hungUp = false
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

// replay is one ordering being told to the call flow.
type replay struct {
	db  *bun.DB
	svc *callflow.Service
	tw  *scriptedTwilio
	// answers are the TwiML each webhook's first request got, which every
	// retry of it must get again.
	answers map[string]callflow.Instructions
}

// step is one thing the call flow is told: an action of an agent or a
// TwiML request (anchors, in the order they happened), a status callback,
// which Twilio may deliver late, early among others, or twice, or a TwiML
// request Twilio sent again.
type step struct {
	name  string
	cause int // index of the anchor that must come before it
	// before is the index of the anchor a retried TwiML request must come
	// before; 0 for a callback, which may come any time after its cause.
	before int
	run    func(ctx context.Context, r *replay) error
}

func conf(event, seq, callSID string, endOnExit bool) func(context.Context, *replay) error {
	return func(ctx context.Context, r *replay) error {
		return r.svc.ConferenceEvent(ctx, callflow.ConferenceEvent{
			ConferenceSID: confSID, FriendlyName: confName, Event: event, Sequence: seq, CallSID: callSID,
			EndOnExit: endOnExit, ReasonEnded: map[bool]string{true: "participant-with-end-conference-on-exit-left"}[event == "conference-end"],
			CallSIDEnding: map[bool]string{true: customerSID}[event == "conference-end"],
		})
	}
}

// status is a call progress callback. Its SequenceNumber counts the
// callbacks Twilio sent for that call, from 0; a duplicate carries the
// same number.
func status(who, sid, st, seq string) func(context.Context, *replay) error {
	return func(ctx context.Context, r *replay) error {
		_, leg := r.tw.legs(who) // 0 for the customer's call: the number's callback
		return r.svc.CallStatus(ctx, callflow.CallStatus{CallSID: sid, Status: st, Sequence: seq, LegID: leg})
	}
}

// twiml is a TwiML webhook: check judges the first request's answer, and
// a retry, the same request again, must be answered the same, or Twilio
// would carry out the call differently depending on which answer reached
// it.
func twiml(key string, ask func(context.Context, *replay) (callflow.Instructions, error), check func(callflow.Instructions) error) func(context.Context, *replay) error {
	return func(ctx context.Context, r *replay) error {
		ins, err := ask(ctx, r)
		if err != nil {
			return err
		}
		first, retried := r.answers[key]
		if !retried {
			r.answers[key] = ins
			return check(ins)
		}
		if !reflect.DeepEqual(ins, first) {
			return fmt.Errorf("the retry was answered %s, the first request %s", describe(ins), describe(first))
		}
		return nil
	}
}

func describe(ins callflow.Instructions) string {
	if ins.Join == nil {
		return fmt.Sprintf("{Say: %q}", ins.Say)
	}
	return fmt.Sprintf("{Join: %+v}", *ins.Join)
}

// agentJoins checks an agent's connect answer: into the caller's
// conference, starting it.
func agentJoins(who string) func(callflow.Instructions) error {
	return func(ins callflow.Instructions) error {
		if ins.Join == nil || ins.Join.Conference != confName || !ins.Join.StartOnEnter {
			return fmt.Errorf("%s was not joined to %s: %s", who, confName, describe(ins))
		}
		return nil
	}
}

// seedsFlow is the warm transfer as Twilio reports it: anchors 0-5 are the
// caller's TwiML request, Alice answering, her transfer, Bob answering, her
// leaving, and the caller hanging up. Twilio was asked for every call
// progress event of the agents' calls (ringing, answered, completed) and
// the number only for completed, and numbered each call's callbacks from 0.
func seedsFlow() (anchors, callbacks, retries []step) {
	incoming := twiml("incoming call", func(ctx context.Context, r *replay) (callflow.Instructions, error) {
		return r.svc.IncomingCall(ctx, callflow.Inbound{CallSID: customerSID, From: "+15551230001", To: "+15550100000"})
	}, func(ins callflow.Instructions) error {
		// The caller waits in a conference named after their call, which
		// ends when they hang up.
		if j := ins.Join; j == nil || j.Conference != confName || j.StartOnEnter || !j.EndOnExit {
			return fmt.Errorf("the caller is not put on hold in %s: %s", confName, describe(ins))
		}
		return nil
	})
	aliceConnect := twiml("alice answers", func(ctx context.Context, r *replay) (callflow.Instructions, error) {
		leg, _ := r.tw.legs("alice")
		return r.svc.AgentConnect(ctx, leg, aliceSID)
	}, agentJoins("alice"))
	bobConnect := twiml("bob answers", func(ctx context.Context, r *replay) (callflow.Instructions, error) {
		leg, _ := r.tw.legs("bob")
		return r.svc.AgentConnect(ctx, leg, bobSID)
	}, agentJoins("bob"))
	anchors = []step{
		{name: "incoming call", run: incoming},
		{name: "alice answers", run: aliceConnect},
		{name: "alice transfers to bob", run: func(ctx context.Context, r *replay) error {
			call, err := models.CallBySID(ctx, r.db, customerSID)
			if err != nil {
				return err
			}
			_, err = r.svc.Transfer(ctx, "alice", call.ID, "bob")
			return err
		}},
		{name: "bob answers", run: bobConnect},
		{name: "alice leaves", run: func(ctx context.Context, r *replay) error {
			call, err := models.CallBySID(ctx, r.db, customerSID)
			if err != nil {
				return err
			}
			return r.svc.Leave(ctx, "alice", call.ID)
		}},
		{name: "the caller hangs up"}, // Twilio's side only; run in replay
	}
	callbacks = []step{
		{name: "alice ringing", cause: 0, run: status("alice", aliceSID, "ringing", "0")},
		{name: "customer joins", cause: 0, run: conf("participant-join", "1", customerSID, true)},
		{name: "alice in progress", cause: 1, run: status("alice", aliceSID, "in-progress", "1")},
		{name: "alice joins", cause: 1, run: conf("participant-join", "2", aliceSID, false)},
		{name: "conference starts", cause: 1, run: conf("conference-start", "3", "", false)},
		{name: "bob ringing", cause: 2, run: status("bob", bobSID, "ringing", "0")},
		{name: "bob in progress", cause: 3, run: status("bob", bobSID, "in-progress", "1")},
		{name: "bob joins", cause: 3, run: conf("participant-join", "4", bobSID, false)},
		{name: "bob modified", cause: 4, run: conf("participant-modify", "5", bobSID, true)},
		{name: "alice leaves the conference", cause: 4, run: conf("participant-leave", "6", aliceSID, false)},
		{name: "alice completed", cause: 4, run: status("alice", aliceSID, "completed", "2")},
		{name: "customer leaves", cause: 5, run: conf("participant-leave", "7", customerSID, true)},
		{name: "bob leaves", cause: 5, run: conf("participant-leave", "8", bobSID, true)},
		{name: "conference ends", cause: 5, run: conf("conference-end", "9", "", false)},
		{name: "bob completed", cause: 5, run: status("bob", bobSID, "completed", "2")},
		{name: "customer completed", cause: 5, run: status("customer", customerSID, "completed", "0")},
	}
	// Twilio requests a TwiML URL again, with the same CallSid and
	// parameters, when the first request timed out or failed; the app may
	// have carried out the first all the same. A retry is for TwiML Twilio
	// is still waiting for, so it comes before the first thing that needs
	// that call in its conference: the caller's before they hang up; an
	// agent's before Alice leaves, which she does once she has heard Bob.
	// Bob's answer may rightly change then: the call becomes his, to end
	// when he leaves.
	retries = []step{
		{name: "incoming call, retried", cause: 0, before: 5, run: incoming},
		{name: "alice answers, retried", cause: 1, before: 4, run: aliceConnect},
		{name: "bob answers, retried", cause: 3, before: 4, run: bobConnect},
	}
	return anchors, callbacks, retries
}

// schedule puts the anchors in order, every callback at a random place
// after its cause, some twice, and some TwiML requests again within their
// window, some twice.
func schedule(r *rand.Rand, anchors, callbacks, retries []step) []step {
	out := append([]step(nil), anchors...)
	indexOf := func(anchor int) int {
		for i, s := range out {
			if s.name == anchors[anchor].name {
				return i
			}
		}
		panic("anchor not scheduled: " + anchors[anchor].name)
	}
	insert := func(s step) {
		from, to := indexOf(s.cause)+1, len(out)
		if s.before != 0 {
			to = indexOf(s.before)
		}
		at := from + r.IntN(to-from+1)
		out = append(out[:at], append([]step{s}, out[at:]...)...)
	}
	for _, cb := range callbacks {
		insert(cb)
		if r.IntN(10) < 3 {
			insert(cb) // Twilio retried it, or sent it twice
		}
	}
	for _, rt := range retries {
		for n := 0; n < 2 && r.IntN(10) < 3; n++ {
			insert(rt)
		}
	}
	return out
}

// TestReorderedAndDuplicatedCallbacks replays the warm transfer's callbacks
// in 1,000 random orders, some twice, with some TwiML requests retried: no
// agent is ever rung twice, a retry gets the same TwiML, and the call
// always ends the same, right way.
//
// Every ordering starts from the same emptied database: on PostgreSQL a
// fresh database per ordering would cost more than the ordering. One
// service replays them all, as one app process would; it empties the
// database in a transaction of its own (Service.Write), so its cached
// view of the queue knows the rows changed.
func TestReorderedAndDuplicatedCallbacks(t *testing.T) {
	ctx := t.Context()
	db, err := models.Open(ctx, withoutFlush(testdb.URL(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	tw := &scriptedTwilio{sids: map[string]string{"alice": aliceSID, "bob": bobSID}}
	svc := callflow.New(db, tw, urls{}, nopPublisher{}, callflow.Config{Number: "+15550100000"}, nil)
	anchors, callbacks, retries := seedsFlow()
	// scheduled counts the steps across orderings: a schedule that stopped
	// retrying or duplicating would pass while testing nothing.
	scheduled := map[string]int{}
	for i := range orderings {
		seed := uint64(i)
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		steps := schedule(r, anchors, callbacks, retries)
		for _, s := range steps {
			scheduled[s.name]++
		}
		if err := svc.Write(ctx, startingPoint); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		tw.restart()
		rp := &replay{db: db, svc: svc, tw: tw, answers: map[string]callflow.Instructions{}}
		if !rp.run(ctx, t, seed, steps) {
			return
		}
	}
	// Each callback is sent once per ordering, a retry only sometimes.
	for _, s := range slices.Concat(callbacks, retries) {
		sent := orderings
		if s.before != 0 {
			sent = 0
		}
		if scheduled[s.name] <= sent {
			t.Errorf("%q was scheduled %d times in %d orderings: never again", s.name, scheduled[s.name], orderings)
		}
	}
}

// withoutFlush turns off PostgreSQL's wait for each commit to reach the
// disk (synchronous_commit), for dbURL's connections only: the replay's
// thirty thousand commits waited for the disk for most of its time, and
// what each transaction sees and locks is the same without the wait.
// SQLite's URL is unchanged.
func withoutFlush(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dbURL
	}
	q := u.Query()
	// pgx sends a parameter it does not know to the server at start-up.
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}

// startingPoint empties the database but for Alice and Bob, available,
// Alice for longer, so she is offered the call.
func startingPoint(ctx context.Context, tx bun.Tx) error {
	if err := testdb.Empty(ctx, tx); err != nil {
		return err
	}
	for i, id := range []string{"alice", "bob"} {
		a := &models.Agent{Identity: id, Name: id, Role: models.RoleAgent, Presence: models.PresenceAvailable,
			PresenceSince: time.Now().Add(time.Duration(i-10) * time.Minute)}
		if err := models.CreateAgent(ctx, tx, a); err != nil {
			return err
		}
	}
	return nil
}

func (r *replay) run(ctx context.Context, t *testing.T, seed uint64, steps []step) bool {
	t.Helper()
	var order []string
	fail := func(format string, args ...any) bool {
		t.Errorf("seed %d, order %v: "+format, append([]any{seed, order}, args...)...)
		return false
	}
	db, tw := r.db, r.tw
	for _, s := range steps {
		order = append(order, s.name)
		if s.run == nil {
			tw.mu.Lock()
			tw.hungUp = true
			tw.mu.Unlock()
			continue
		}
		if err := s.run(ctx, r); err != nil {
			return fail("%s: %v", s.name, err)
		}
	}
	tw.mu.Lock()
	rings := tw.rings
	tw.mu.Unlock()
	if len(rings) != 2 || rings[0] != "alice" || rings[1] != "bob" {
		return fail("rang %v, want [alice bob]", rings)
	}
	call, err := models.CallBySID(ctx, db, customerSID)
	if err != nil {
		return fail("%v", err)
	}
	bob, _ := models.AgentByIdentity(ctx, db, "bob")
	if call.State != models.CallEnded || call.EndedBy != "customer" || call.AnsweredAt.IsZero() || call.AgentID != bob.ID {
		return fail("call = %+v", call)
	}
	for _, who := range []string{"alice", "bob"} {
		connect, status := tw.legs(who)
		if connect != status {
			return fail("%s's ring gave Twilio leg %d to connect and leg %d for its status", who, connect, status)
		}
		l, err := models.LegByID(ctx, db, connect)
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
	for _, kind := range []string{callflow.EventCallQueued, callflow.EventCallOffered, callflow.EventCallAnswered, callflow.EventTransferCompleted, callflow.EventCallEnded} {
		if count[kind] != 1 {
			return fail("%d %s events, want 1 (%v)", count[kind], kind, count)
		}
	}
	return true
}

package views

import (
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// consultOpen says a consult is under way on the call.
func consultOpen(c *callflow.CallSummary) bool {
	return c.Transfer != nil && c.Transfer.Mode == models.TransferConsult && c.Transfer.State.Open()
}

// myConsult says the agent me started the consult under way, so they
// complete, make three-way or cancel it.
func myConsult(me string, c *callflow.CallSummary) bool {
	return consultOpen(c) && c.Transfer.FromIdentity == me
}

// consultJoined says the consulted colleague is on the call.
func consultJoined(c *callflow.CallSummary) bool {
	return consultOpen(c) && c.Transfer.State == models.TransferJoined
}

// threeWay says the caller talks with both agents of a consult.
func threeWay(c *callflow.CallSummary) bool {
	return consultJoined(c) && !c.CustomerOnHold
}

// callProgress is the call's transfer or consult in words, as the agent me
// sees it.
func callProgress(me string, c *callflow.CallSummary) string {
	t := c.Transfer
	if t == nil || t.Mode != models.TransferConsult {
		return transferProgress(me, t)
	}
	to, from := nameOr(t.ToName, t.ToIdentity), nameOr(t.FromName, t.FromIdentity)
	other := to
	if me == t.ToIdentity {
		other = from
	}
	switch {
	case threeWay(c) && (me == t.FromIdentity || me == t.ToIdentity):
		return "Three-way with " + other
	case threeWay(c):
		return "Three-way with " + from + " and " + to
	case consultOpen(c) && me == t.FromIdentity:
		return "Consulting " + to + " — the caller is on hold"
	case consultJoined(c) && me == t.ToIdentity:
		return from + " is consulting you — the caller is on hold"
	case consultOpen(c) && me == t.ToIdentity:
		return "Consult from " + from + " ringing"
	case consultOpen(c):
		return from + " is consulting " + to + " — the caller is on hold"
	case t.State == models.TransferCanceled:
		return "Consult with " + to + " canceled"
	}
	return transferProgress(me, t)
}

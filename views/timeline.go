package views

import (
	"fmt"
	"strconv"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// timelineText says in words what happened at one step of a call.
func timelineText(e callflow.TimelineEntry) string {
	who := nameOr(e.Agent, "An agent")
	switch e.Step {
	case callflow.StepQueued:
		return "Called, waiting for an agent"
	case callflow.StepRequeued:
		return "Waiting again for an agent"
	case callflow.StepOffered:
		return "Rang " + who
	case callflow.StepMissed:
		switch e.Detail {
		case "declined":
			return who + " declined"
		case "no_answer":
			return who + " did not answer"
		case "failed":
			return "Could not reach " + who
		}
		return "Stopped ringing " + who
	case callflow.StepAnswered:
		return who + " answered"
	case callflow.StepJoined:
		return who + " joined"
	case callflow.StepHold:
		if e.Customer {
			return "Caller on hold"
		}
		return who + " on hold"
	case callflow.StepUnhold:
		if e.Customer {
			return "Caller off hold"
		}
		return who + " off hold"
	case callflow.StepThreeWay:
		return "Three-way: the caller joined both agents"
	case callflow.StepTransfer:
		if e.Detail == "blind" {
			return who + " blind-transferred to " + nameOr(e.Other, "a colleague")
		}
		return who + " transferring to " + nameOr(e.Other, "a colleague")
	case callflow.StepConsult:
		return who + " consulting " + nameOr(e.Other, "a colleague") + ", caller on hold"
	case callflow.StepHandedOn:
		if e.Other == "" {
			return "Transferred to " + who
		}
		return "Transferred from " + e.Other + " to " + who
	case callflow.StepNotHanded:
		to := nameOr(e.Other, "a colleague")
		switch e.Detail {
		case "declined":
			return "Transfer to " + to + " declined"
		case "no_answer":
			return "Transfer to " + to + " not answered"
		case "canceled":
			return "Transfer to " + to + " canceled"
		}
		return "Transfer to " + to + " failed"
	case callflow.StepLeft:
		return who + " left"
	case callflow.StepEnded:
		switch {
		case e.Customer && e.Detail == "caller hung up":
			return "Caller hung up"
		case e.Agent != "":
			return e.Agent + " ended the call"
		}
		return "Call ended: " + endReason(e.Detail)
	}
	return string(e.Step)
}

// timelineOffset is how far into the call a step came, as +m:ss.
func timelineOffset(c *callflow.CallSummary, e callflow.TimelineEntry) string {
	return "+" + formatDuration(e.At.Sub(c.CreatedAt))
}

// stepTime is the moment of a step, to the second, in UTC.
func stepTime(t time.Time) string {
	return t.UTC().Format("15:04:05 UTC")
}

// timelineID is the id of a call's timeline; app.js keeps the ones open
// that the manager opened, across the fragments the server pushes.
func timelineID(c *callflow.CallSummary) string {
	return "timeline-" + strconv.FormatInt(c.ID, 10)
}

// seconds is a short duration in words, e.g. "20 s" or "1 min 30 s".
func seconds(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s%60 == 0:
		return fmt.Sprintf("%d min", s/60)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}

// serviceLevelValue is the service level in percent, or a dash while no
// call counts.
func serviceLevelValue(l callflow.ServiceLevel) string {
	if pct, ok := l.Percent(); ok {
		return strconv.Itoa(pct) + "%"
	}
	return "—"
}

// serviceLevelDetail is the figures behind the service level.
func serviceLevelDetail(l callflow.ServiceLevel) string {
	calls := "calls"
	if l.Calls == 1 {
		calls = "call"
	}
	return fmt.Sprintf("%d of %d within %s · %d %s today", l.InTarget, l.Counted(), seconds(l.Target), l.Calls, calls)
}

// serviceLevelDefinition is the service level's legend.
func serviceLevelDefinition(l callflow.ServiceLevel) string {
	t := seconds(l.Target)
	return "Service level: calls answered by an agent within " + t + " ÷ (calls answered + callers who hung up after waiting more than " + t +
		"), since 00:00 UTC. Callers who hung up within " + t + " are not counted; callers still waiting longer than " + t + " count as missed."
}

// transferOutcome is one outcome of today's transfers, as the board lists
// them.
type transferOutcome struct {
	Key   string
	Label string
	N     int
}

func transferOutcomeList(t callflow.TransferOutcomes) []transferOutcome {
	return []transferOutcome{
		{"completed", "completed", t.Completed},
		{"declined", "declined", t.Declined},
		{"no_answer", "not answered", t.NoAnswer},
		{"failed", "failed", t.Failed},
		{"canceled", "canceled", t.Canceled},
		{"in_progress", "in progress", t.InProgress},
	}
}

package views

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/warmtransfer/warmtransfer/models"
)

// ActivityText says in words what an event was. caller names the call's
// customer; name gives an agent's name from their identity or id.
func ActivityText(ev models.Event, caller string, name func(identity string, id int64) string) string {
	var p map[string]any
	_ = json.Unmarshal([]byte(ev.Payload), &p)
	str := func(k string) string { s, _ := p[k].(string); return s }
	num := func(k string) int64 { f, _ := p[k].(float64); return int64(f) }
	who := name(str("agent"), ev.AgentID)
	switch ev.Kind {
	case "call.queued":
		if p["requeued"] == true {
			return fmt.Sprintf("%s is waiting again for an agent", caller)
		}
		return fmt.Sprintf("%s called and is waiting", caller)
	case "call.offered":
		return fmt.Sprintf("Ringing %s for %s", who, caller)
	case "call.offer_missed":
		if str("reason") == "declined" {
			return fmt.Sprintf("%s declined %s", who, caller)
		}
		return fmt.Sprintf("%s did not answer %s", who, caller)
	case "call.answered":
		return fmt.Sprintf("%s answered %s", who, caller)
	case "participant.joined":
		if p["customer"] == true {
			return fmt.Sprintf("%s is on the line", caller)
		}
		return fmt.Sprintf("%s joined the call with %s", who, caller)
	case "participant.left":
		if p["customer"] == true {
			return fmt.Sprintf("%s left the call", caller)
		}
		return fmt.Sprintf("%s left the call with %s", who, caller)
	case "participant.hold":
		if p["hold"] == true {
			return fmt.Sprintf("%s is on hold", caller)
		}
		return fmt.Sprintf("%s is off hold", caller)
	case "transfer.started":
		return fmt.Sprintf("%s is transferring %s to %s", name(str("from"), 0), caller, name(str("to"), 0))
	case "transfer.joined":
		return fmt.Sprintf("%s joined: %s may leave the call", who, name("", ev.AgentID))
	case "transfer.completed":
		return fmt.Sprintf("%s now has %s", name("", ev.AgentID), caller)
	case "transfer.failed":
		return fmt.Sprintf("The transfer of %s to %s did not complete (%s)", caller, name("", num("to_agent")), str("state"))
	case "call.ended":
		by := str("ended_by")
		if by == "" || by == "customer" {
			return fmt.Sprintf("%s's call ended: %s", caller, str("reason"))
		}
		return fmt.Sprintf("%s's call ended by %s", caller, name(by, 0))
	case "agent.presence":
		if admin := str("admin"); admin != "" {
			return fmt.Sprintf("%s: %s by %s", name("", ev.AgentID), strings.ReplaceAll(admin, "_", " "), name(str("by"), 0))
		}
		return fmt.Sprintf("%s is now %s", name("", ev.AgentID), presenceWord(models.Presence(str("presence"))))
	}
	return ev.Kind
}

func presenceWord(p models.Presence) string {
	switch p {
	case models.PresenceWrapUp:
		return "wrapping up"
	case "":
		return "unknown"
	}
	return string(p)
}

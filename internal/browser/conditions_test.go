package browser_test

// More conditions for person.see and person.sees (see consult_test.go for
// the first ones), built from the pages' data-testid attributes. Rows and
// cards are found by the caller's number, so a check about one call
// cannot be met by another call's row.

// live is the page's event stream open.
var live = byTestID("live-status") + `?.dataset.state === "open"`

// offerFor is the offer card showing the call from number.
func offerFor(number string) string {
	return `(() => { const o = ` + byTestID("offer") + `; return !!o && !o.hidden && ` +
		`o.querySelector('[data-testid="offer-number"]')?.textContent.trim() === ` + jsString(number) + `; })()`
}

// onCallWith is the call panel showing the call from number in state.
func onCallWith(number, state string) string {
	return `(() => { const c = ` + byTestID("call") + `; return !!c && c.dataset.state === ` + jsString(state) + ` && ` +
		`c.querySelector('[data-testid="call-number"]')?.textContent.trim() === ` + jsString(number) + `; })()`
}

// noCall is the call panel empty.
var noCall = present("no-call")

// rowOf is the board's active row for the call from number, or undefined.
func rowOf(number string) string {
	return `[...document.querySelectorAll('[data-testid^="call-row-"]')].find((r) => ` +
		`r.querySelector('[data-testid="caller-number"]')?.textContent.trim() === ` + jsString(number) + `)`
}

// endedRowOf is the board's row among the calls ended today for the call
// from number, or undefined.
func endedRowOf(number string) string {
	return `[...document.querySelectorAll('[data-testid^="ended-row-"]')].find((r) => ` +
		`r.querySelector('[data-testid="caller-number"]')?.textContent.trim() === ` + jsString(number) + `)`
}

// rowState is the board's row for number showing the state label.
func rowState(number, label string) string {
	return rowOf(number) + `?.querySelector('[data-testid="call-state"]')?.textContent.trim() === ` + jsString(label)
}

// rowAgents is the board's row for number listing exactly the agents in
// with and none of those in without.
func rowAgents(number string, with, without []string) string {
	js := `(() => { const a = ` + rowOf(number) + `?.querySelector('[data-testid="call-agents"]')?.textContent; if (a === undefined) return false;`
	for _, n := range with {
		js += ` if (!a.includes(` + jsString(n) + `)) return false;`
	}
	for _, n := range without {
		js += ` if (a.includes(` + jsString(n) + `)) return false;`
	}
	return js + ` return true; })()`
}

// noRow is no active row for number on the board.
func noRow(number string) string { return `!` + rowOf(number) }

// endedBy is the call from number among the calls ended today, ended by
// who (as the board words it).
func endedBy(number, who string) string {
	return endedRowOf(number) + `?.querySelector('[data-testid="ended-by"]')?.textContent.trim() === ` + jsString(who)
}

// boardWaiting is the board's count of calls waiting.
func boardWaiting(n string) string {
	return byTestID("board-waiting") + `?.textContent.trim() === ` + jsString(n)
}

// boardPresence is an agent's presence on the board.
func boardPresence(identity, presence string) string {
	return byTestID("agent-row-"+identity) + `?.dataset.presence === ` + jsString(presence)
}

// rosterPresence is a colleague's presence in an agent's roster.
func rosterPresence(identity, presence string) string {
	return byTestID("roster-"+identity) + `?.dataset.presence === ` + jsString(presence)
}

// myPresence is the agent's own presence on their console.
func myPresence(presence string) string {
	return byTestID("agent-status") + `?.dataset.presence === ` + jsString(presence)
}

// transferOption is a colleague in the transfer list with that presence,
// pickable or not, and (when not) saying why.
func transferOption(identity, presence string, pickable bool) string {
	o := byTestID("transfer-option-" + identity)
	if pickable {
		return `(() => { const o = ` + o + `; return !!o && !o.disabled && o.dataset.presence === ` + jsString(presence) + `; })()`
	}
	return `(() => { const o = ` + o + `; return !!o && o.disabled && o.dataset.presence === ` + jsString(presence) +
		` && o.textContent.includes("(" + ` + jsString(presence) + ` + ")"); })()`
}

// activityLine is a line in the page's activity list containing text.
func activityLine(text string) string {
	return `[...document.querySelectorAll('[data-testid="activity-item"]')].some((li) => li.textContent.includes(` + jsString(text) + `))`
}

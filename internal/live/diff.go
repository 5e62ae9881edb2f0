package live

import "strings"

// A fragment's parts are diffed against the version the audience was last
// sent, and the differences written as htmx out-of-band swaps: a part that
// changed replaces its element (hx-swap-oob="true"), a part that is gone
// deletes it, and a new part is inserted next to a neighbour of its kind
// (a row beside a row). Each swap is in a <template>, so that a table row
// or a list item parses as one whatever else the patch holds.

func newFragmentState(m Message) fragmentState {
	st := fragmentState{msg: m}
	st.skeleton, st.diffable = skeleton(m)
	return st
}

// skeleton is a fragment's HTML with its parts cut out, each run of parts
// with nothing but white space between them marked by one NUL: two versions with the same
// skeleton differ only in their parts, however many rows each has. ok is
// false when a part is not where the fragment's parts say.
func skeleton(m Message) (string, bool) {
	if len(m.Parts) == 0 {
		return "", false
	}
	var b strings.Builder
	rest := m.Data
	for i, p := range m.Parts {
		at := strings.Index(rest, p.HTML)
		if at < 0 || p.HTML == "" {
			return "", false
		}
		// Between two parts, white space (templ puts a space between
		// components on their own lines) is not part of the skeleton:
		// rows are a run whatever their number.
		if i == 0 || strings.TrimSpace(rest[:at]) != "" {
			b.WriteString(rest[:at])
			b.WriteByte(0)
		}
		rest = rest[at+len(p.HTML):]
	}
	b.WriteString(rest)
	return b.String(), true
}

// diffParts writes the swaps that turn the parts before into the parts
// after. ok is false when they cannot: the parts kept changed order, a
// part is not one element, or a new part has no neighbour of its kind to
// be inserted beside.
func diffParts(before, after []Part) (string, bool) {
	if sameIDs(before, after) {
		// Mostly, the same parts in the same order: some changed.
		var b strings.Builder
		for i, p := range after {
			if p.HTML == before[i].HTML {
				continue
			}
			tag := tagOf(p.HTML)
			if tag == "" {
				return "", false
			}
			writeOOB(&b, tag, p.HTML, "true")
		}
		return b.String(), true
	}
	old := make(map[string]int, len(before))
	for i, p := range before {
		old[p.ID] = i
	}
	kept := make(map[string]bool, len(after))
	last := -1
	for _, p := range after {
		if i, ok := old[p.ID]; ok {
			if i < last {
				return "", false
			}
			last, kept[p.ID] = i, true
		}
	}
	var b strings.Builder
	for _, p := range before {
		if !kept[p.ID] {
			b.WriteString(`<template><div id="` + p.ID + `" hx-swap-oob="delete"></div></template>`)
		}
	}
	for i, p := range after {
		tag := tagOf(p.HTML)
		if tag == "" {
			return "", false
		}
		if kept[p.ID] {
			if p.HTML != before[old[p.ID]].HTML {
				writeOOB(&b, tag, p.HTML, "true")
			}
			continue
		}
		// After the part before it (kept, or inserted just before), or
		// else before the next kept one, if that is an element of the same
		// kind: a row goes among rows.
		next := ""
		for _, q := range after[i+1:] {
			if kept[q.ID] {
				if tagOf(q.HTML) == tag {
					next = q.ID
				}
				break
			}
		}
		switch {
		case i > 0 && tagOf(after[i-1].HTML) == tag:
			writeOOB(&b, tag, p.HTML, "afterend:#"+after[i-1].ID)
		case next != "":
			writeOOB(&b, tag, p.HTML, "beforebegin:#"+next)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// sameIDs says before and after are the same parts, in the same order.
func sameIDs(before, after []Part) bool {
	if len(before) != len(after) {
		return false
	}
	for i := range before {
		if before[i].ID != after[i].ID {
			return false
		}
	}
	return true
}

// tagOf is the name of the element html starts with, "" if it does not
// start with one.
func tagOf(html string) string {
	if len(html) < 2 || html[0] != '<' {
		return ""
	}
	n := 1
	for n < len(html) && (html[n] >= 'a' && html[n] <= 'z' || html[n] >= '0' && html[n] <= '9') {
		n++
	}
	if n == 1 || n == len(html) || (html[n] != ' ' && html[n] != '>') {
		return ""
	}
	return html[1:n]
}

// writeOOB adds one swap of a part to a patch. A replacement marks the
// part's own element; an insertion wraps it in an element htmx unwraps
// (it inserts the children of the marked element), of a kind the part may
// be a child of.
func writeOOB(b *strings.Builder, tag, html, swap string) {
	b.WriteString("<template>")
	if swap == "true" {
		b.WriteString("<" + tag + ` hx-swap-oob="true"`)
		b.WriteString(html[1+len(tag):])
	} else {
		wrap := "div"
		switch tag {
		case "tr":
			wrap = "tbody"
		case "li":
			wrap = "ul"
		}
		b.WriteString("<" + wrap + ` hx-swap-oob="` + swap + `">`)
		b.WriteString(html)
		b.WriteString("</" + wrap + ">")
	}
	b.WriteString("</template>")
}

package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"
)

type reportInput struct {
	calls, agents, unanswered  int
	rate                       float64
	duration, placed, answered time.Duration
	hungUp                     time.Duration
	milestones                 []milestone
	streams                    *streamCounter
	memAnswered, memEnd        serverMemory
}

func (r *callsRun) report(in reportInput) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("\ncalls: %d concurrent calls, %d agents, %.0f transfers/min for %s, against %s (%s)\n\n",
		in.calls, in.agents, in.rate, in.duration, r.t.URL, describeTarget(r.t))
	s := summarize(r.answerLat)
	fmt.Printf("placed in %s; all answered %s after the first call (%d unanswered)\n", in.placed.Round(time.Millisecond), in.answered.Round(time.Millisecond), in.unanswered)
	fmt.Printf("answer time (call placed → the app has the caller and the agent in the conference): p50 %s ms, p99 %s ms, max %s ms\n", ms(s.P50), ms(s.P99), ms(s.Max))
	fmt.Printf("after the hang-ups began (%d customers hung up within %s):\n", len(r.customers), in.hungUp.Round(time.Millisecond))
	for _, m := range in.milestones {
		fmt.Printf("  %-55s %s\n", m.what, m.after.Round(time.Millisecond))
	}
	fmt.Println()

	rows := [][]string{{"transfer", "completed", "p50 ms", "p99 ms", "max ms"}}
	var all []time.Duration
	for _, mode := range slices.Sorted(maps.Keys(r.transferLt)) {
		ds := r.transferLt[mode]
		all = append(all, ds...)
		s := summarize(ds)
		rows = append(rows, []string{mode, strconv.Itoa(s.N), ms(s.P50), ms(s.P99), ms(s.Max)})
	}
	s = summarize(all)
	rows = append(rows, []string{"all", strconv.Itoa(s.N), ms(s.P50), ms(s.P99), ms(s.Max)})
	table(os.Stdout, rows)
	fmt.Printf("(from the request until the app shows the colleague alone with the caller; warm and consult without the %s the agents talk)\n", r.talk)
	fmt.Printf("\ntransfer attempts: ")
	for _, k := range slices.Sorted(maps.Keys(r.outcomes)) {
		fmt.Printf("%s %d; ", k, r.outcomes[k])
	}
	chained := 0
	for _, c := range r.customers {
		if c.transfers > 1 {
			chained++
		}
	}
	fmt.Printf("\ncalls transferred more than once: %d\n", chained)
	fmt.Printf("live streams: %d messages, %s received; the server ended a stream %d time(s) (each reconnected with Last-Event-ID)\n", in.streams.messages.Load(), mib(float64(in.streams.bytes.Load())), in.streams.dropped.Load())
	fmt.Printf("app memory (from /metrics) with every call answered: %s\n", in.memAnswered)
	fmt.Printf("app memory at the end: %s\n", in.memEnd)

	fmt.Println()
	if len(r.failures) == 0 {
		fmt.Println("checks: every call answered, with its expected agent before the hang-up, nobody on two calls, every call ended in the app and the simulator: OK")
		return
	}
	fmt.Println("FAILURES:")
	for _, kind := range slices.Sorted(maps.Keys(r.failures)) {
		ex := r.failures[kind]
		fmt.Printf("  %s: %d\n", kind, len(ex))
		for _, e := range ex[:min(len(ex), 5)] {
			fmt.Printf("      %s\n", e)
		}
	}
}

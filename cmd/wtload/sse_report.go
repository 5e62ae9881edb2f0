package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// sseTarget is the target: a change reaches every client within
// this, at the 99th percentile.
const sseTarget = 250 * time.Millisecond

// report prints what the sse scenario measured, and fails when a stream
// did not open or an update did not reach its stream.
func (sc *sseScenario) report() error {
	var firstAll, doneAll, doneBoard, doneAgent, afterAnswer []time.Duration
	rows := [][]string{{"change", "POST /presence ms", "complete p50 ms", "complete p99 ms", "complete max ms", "not reached"}}
	missed := 0
	for k, r := range sc.results {
		var done []time.Duration
		notReached := 0
		for i := range sc.clients {
			if f := r.probe.first[i].Load(); f > 0 {
				firstAll = append(firstAll, time.Duration(f))
			}
			d := r.probe.done[i].Load()
			if d <= 0 {
				notReached++
				continue
			}
			done = append(done, time.Duration(d))
			// The app publishes a change once it has committed it, just
			// before it answers the POST: counted from the answer, a
			// commit held up (by the disk, say) is left out, and what
			// remains is the fan-out. A stream may even be reached before
			// the answer.
			afterAnswer = append(afterAnswer, max(time.Duration(d)-r.post, 0))
			if sc.clients[i].board {
				doneBoard = append(doneBoard, time.Duration(d))
			} else {
				doneAgent = append(doneAgent, time.Duration(d))
			}
		}
		doneAll = append(doneAll, done...)
		missed += notReached
		s := summarize(done)
		rows = append(rows, []string{strconv.Itoa(k + 1), ms(r.post), ms(s.P50), ms(s.P99), ms(s.Max), strconv.Itoa(notReached)})
	}
	n := len(sc.clients)
	fmt.Printf("\nsse: %d streams (%d board as a manager, %d consoles of %d agents) against %s (%s)\n",
		n, sc.nBoard, n-sc.nBoard, len(sc.agents), sc.t.URL, describeTarget(sc.t))
	fmt.Printf("opened in %s (%.0f streams/s); %d failed to open, %d ended early\n\n",
		sc.connectTime.Round(time.Millisecond), float64(n)/sc.connectTime.Seconds(), sc.openFailures, sc.run.dropped.Load())
	table(os.Stdout, rows)
	fmt.Println()
	rows = [][]string{{"from the change to …", "samples", "p50 ms", "p90 ms", "p99 ms", "max ms"}}
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{
		{"first message of the update, any stream", firstAll},
		{"the changed row, any stream", doneAll},
		{"the changed row, board streams", doneBoard},
		{"the changed row, console streams", doneAgent},
		{"the changed row, after the POST's answer", afterAnswer},
	} {
		s := summarize(r.ds)
		rows = append(rows, []string{r.name, strconv.Itoa(s.N), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max)})
	}
	table(os.Stdout, rows)
	fmt.Println("(the last row leaves out the POST's own time, the commit included: the fan-out alone)")
	if len(sc.results) > 0 && n > 0 {
		perChange := float64(sc.run.bytes.Load()) / float64(len(sc.results))
		fmt.Printf("\ndata sent per change: %s in all, %.1f KiB per stream\n", mib(perChange), perChange/float64(n)/1024)
	}
	if k := len(sc.results); k > 0 && n > 0 {
		// Both share the machine's CPUs: what the generator spends
		// reading is not spent writing, and on loopback the kernel
		// charges much of the receiving side to the sender's writes.
		fmt.Printf("\nCPU per change (over the changes, heartbeats included):\n")
		if sc.t.Self != nil {
			fmt.Printf("  this process, the app and the load generator together: %s ms, %.1f µs per stream\n", ms(sc.toolCPU/time.Duration(k)), perStream(sc.toolCPU, k, n))
		} else {
			app := time.Duration((sc.memAfter.CPU - sc.memIdle.CPU) * float64(time.Second))
			fmt.Printf("  the app (from /metrics): %s ms, %.1f µs per stream\n", ms(app/time.Duration(k)), perStream(app, k, n))
			fmt.Printf("  this load generator:     %s ms, %.1f µs per stream\n", ms(sc.toolCPU/time.Duration(k)), perStream(sc.toolCPU, k, n))
		}
	}
	scope := "the app's process"
	if sc.t.Self != nil {
		scope = "this process: the app and the load generator together"
	}
	fmt.Printf("\nmemory (%s, from /metrics):\n", scope)
	fmt.Printf("  before the streams:  %s\n", sc.memBefore)
	fmt.Printf("  streams open, idle:  %s\n", sc.memIdle)
	fmt.Printf("  peak while changing: RSS %s, Go heap in use %s, Go sys %s\n", mib(sc.memPeak.RSS), mib(sc.memPeak.HeapInuse), mib(sc.memPeak.Sys))
	fmt.Printf("  after the changes:   %s\n", sc.memAfter)
	if n > 0 {
		fmt.Printf("  per open stream (idle RSS growth / streams): %.1f KiB\n", (sc.memIdle.RSS-sc.memBefore.RSS)/float64(n)/1024)
	}
	if s := summarize(doneAll); s.N > 0 {
		verdict := "met"
		if s.P99 > sseTarget {
			verdict = fmt.Sprintf("missed by %.1f×", float64(s.P99)/float64(sseTarget))
		}
		fmt.Printf("\np99 from a change to the changed row on every stream: %s ms (target %s ms): %s\n", ms(s.P99), ms(sseTarget), verdict)
	}
	if missed > 0 || sc.openFailures > 0 {
		return fmt.Errorf("%d stream(s) failed to open and %d update(s) did not reach their stream", sc.openFailures, missed)
	}
	return nil
}

// perStream is the CPU time d, spent over changes changes to n streams,
// per stream and change, in microseconds.
func perStream(d time.Duration, changes, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(changes*n)
}

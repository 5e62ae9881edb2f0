package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverMemory is what the app's /metrics says about its process: its
// memory, and the CPU time it has used (seconds).
type serverMemory struct {
	RSS, HeapInuse, StackInuse, Sys, Goroutines, SSEClients float64
	CPU                                                     float64
}

// metricNames are the Prometheus series serverMemory is read from: the
// process and Go collectors the app registers, and its own stream gauge.
var metricNames = map[string]func(*serverMemory, float64){
	"process_resident_memory_bytes": func(m *serverMemory, v float64) { m.RSS = v },
	"go_memstats_heap_inuse_bytes":  func(m *serverMemory, v float64) { m.HeapInuse = v },
	"go_memstats_stack_inuse_bytes": func(m *serverMemory, v float64) { m.StackInuse = v },
	"go_memstats_sys_bytes":         func(m *serverMemory, v float64) { m.Sys = v },
	"go_goroutines":                 func(m *serverMemory, v float64) { m.Goroutines = v },
	"wt_sse_clients":                func(m *serverMemory, v float64) { m.SSEClients = v },
	"process_cpu_seconds_total":     func(m *serverMemory, v float64) { m.CPU = v },
}

// readMemory reads the app's memory from /metrics (Prometheus text format;
// only unlabelled series are needed, so no parser library).
func (t *target) readMemory(ctx context.Context, client *http.Client) (serverMemory, error) {
	var m serverMemory
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if set := metricNames[name]; set != nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				set(&m, v)
			}
		}
	}
	return m, sc.Err()
}

func (m serverMemory) String() string {
	return fmt.Sprintf("RSS %s, Go heap in use %s, stacks %s, Go sys %s, %0.f goroutines, %0.f SSE clients",
		mib(m.RSS), mib(m.HeapInuse), mib(m.StackInuse), mib(m.Sys), m.Goroutines, m.SSEClients)
}

// sampleMemory polls the app's memory every 250 ms, keeping the highest
// values in peak (which starts from start), until the returned function is
// called.
func sampleMemory(ctx context.Context, t *target, client *http.Client, start serverMemory, peak *serverMemory) (stop func()) {
	*peak = start
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if m, err := t.readMemory(ctx, client); err == nil {
					peak.RSS, peak.HeapInuse, peak.Sys = max(peak.RSS, m.RSS), max(peak.HeapInuse, m.HeapInuse), max(peak.Sys, m.Sys)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Command wtload puts load on a running warm-transfer app (or on one it
// starts in-process with -self) and reports what it measured:
//
//	wtload webhooks [flags]   signed Twilio webhooks at a set concurrency, beside a bare Echo handler
//	wtload calls [flags]      concurrent customer calls through the simulator, agents answering and transferring
//	wtload sse [flags]        thousands of live-update streams, and how long a change takes to reach them
//
// Each scenario's -h lists its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

var scenarios = map[string]func(context.Context, []string) error{
	"webhooks": runWebhooks,
	"calls":    runCalls,
	"sse":      runSSE,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || scenarios[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: wtload webhooks|calls|sse [flags]   (wtload <scenario> -h lists the flags)")
		os.Exit(2)
	}
	err := scenarios[os.Args[1]](ctx, os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wtload:", err)
		os.Exit(1)
	}
}

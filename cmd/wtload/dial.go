package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// raiseOpenFileLimit lifts RLIMIT_NOFILE to at least want (and the soft
// limit to the hard one): every connection is a descriptor, and with -self
// both ends of each are in this process. Raising the hard limit needs
// CAP_SYS_RESOURCE; without it the soft limit still goes up to the hard one.
func raiseOpenFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	if lim.Cur < want {
		return lim.Cur, fmt.Errorf("open-file limit is %d, below the %d this run needs (raise it with ulimit -n, as root)", lim.Cur, want)
	}
	return lim.Cur, nil
}

// loopbackSources are the source addresses connections to a loopback
// target are spread over. Linux picks an ephemeral port per source address
// once a socket is bound, so each address brings its own ~28,000 ports:
// tens of thousands of long-lived streams plus the TIME_WAIT sockets of
// earlier runs would otherwise exhaust a single one.
const loopbackSources = 8

// dialer opens TCP connections, spreading those to a loopback IPv4 target
// over 127.0.0.1 … 127.0.0.<loopbackSources>.
type dialer struct {
	next atomic.Uint32
	base net.Dialer
}

func newDialer() *dialer {
	return &dialer{base: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
		addr = net.JoinHostPort(ip.String(), portOf(addr))
	}
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return d.base.DialContext(ctx, network, addr)
	}
	n := d.next.Add(1) % loopbackSources
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n))}
	dd := d.base
	dd.LocalAddr = local
	return dd.DialContext(ctx, network, addr)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// newTransport is an HTTP/1.1 transport that keeps up to conns connections
// per host open for reuse, so a load run measures requests, not handshakes.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         newDialer().DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

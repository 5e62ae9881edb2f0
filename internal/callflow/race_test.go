//go:build race

package callflow_test

// The race detector slows the pure-Go SQLite driver many times over; the
// full 1,000 orderings run without it.
const orderings = 100

//go:build race

package callflow_test

// The race detector slows every database call many times over (the pure-Go
// SQLite driver most); the full 1,000 orderings run without it.
const orderings = 100

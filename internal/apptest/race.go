//go:build race

package apptest

// The race detector slows the pure-Go SQLite driver many times over.
const raceSlowdown = 4

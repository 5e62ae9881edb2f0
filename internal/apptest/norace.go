//go:build !race

package apptest

const raceSlowdown = 1

//go:build !race

package callflow_test

const orderings = 1000

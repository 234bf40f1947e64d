//go:build race

package kernels

// raceEnabled thins the exhaustive single-goroutine kernel sweeps under the
// race detector, which slows them tenfold and has nothing to find in them;
// the plain test run covers them in full.
const raceEnabled = true

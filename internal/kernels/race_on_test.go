//go:build race

package kernels

// raceEnabled thins the exhaustive single-goroutine kernel sweeps under the
// race detector, which slows them tenfold and has nothing to find in them;
// the plain test run covers them in full: `make test-go` runs this package
// without -race and without -tags purego too, the assembly at full
// strength (and .ci/run runs make test-go).
const raceEnabled = true

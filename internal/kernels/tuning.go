package kernels

import (
	"fmt"
	"os"
	"strings"
)

// # Per-CPU choices
//
// Some kernel parameters are best at different values on CPUs with the
// same instruction sets: this is the one table of them, a row per
// microarchitecture, each value with the measurement that chose it. A CPU
// the table does not name gets the default row. LLAMA2_CPU_TABLE=<row>
// (zen4, zen5, default) runs another row's choices on this CPU, so that
// rows can be compared side by side in one sitting (`llama2 bench` prints
// the row in use).
//
// Resident panels' prefetch distance (bytes ahead of each of the 4
// streams; ../asm/gguf/resident.go). Zen 5 VM (family 26),
// BenchmarkMatVecResidentDRAM, Q8_0 5632x2048, GB/s at 1 / 2 threads,
// medians of 4 alternated rounds: none 32.7 / 57.8, 512 30.8 / 51.9, 1024
// 34.6 / 63.0, 2048 33.9 / 62.0, 4096 31.8 / 59.2, 12288 32.7 / 60.1. Zen 4
// VM (family 25 model 17), the same benchmark, medians of 3 rounds: none
// 24.2 / 33.1, 256 27.6 / 29.4, 512 21.0 / 29.5, 1024 18.0 / 26.5, 2048
// 17.0 / 26.4 (stories110M's 768x768: none 21.8 / 29.9, 256 23.4 / 30.6,
// 1024 19.1 / 26.6). Q4_0 on Zen 4, TinyLlama-shaped tg64 tok/s, medians
// of 3-4 rounds: none 41.5 / 52.1, 256 42.0 / 52.9, 512 37.6 / 52.0, 1024
// 32.9 / 52.1, 2048 34.6 / 47.2. Zen 4 splits each 512-bit operation in
// two, so a block takes about twice as long there and a shorter distance
// is as far ahead in time. Q4_0 on Zen 5: the table below. Resident Q4_K
// and Q6_K (one distance for both,
// ../asm/gguf/residentk.go) on Zen 4, TinyLlama-shaped Q4_K_M tg64 tok/s
// at 1 / 2 threads, medians of 3 alternated rounds in one quiet spell:
// none 41.9 / 52.3, 256 42.9 / 64.0, 512 36.9 / 51.3, 1024 30.6 / 45.6,
// 2048 28.6 / 44.9. Zen 5: the table below.
//
// The float32 and llama2.c Q8_0 matrix-vector kernels' prefetch distance
// (../asm/matvec.go, ../asm/q8): they are generated for 2048 bytes ahead
// (Zen 5's choice: without prefetches they streamed as fast in a quiet
// run, and lost 25-30% while another process loaded memory) and for none.
// Zen 4, LLAMA2_BENCH_DRAM=1 BenchmarkMatVecDRAM (float32), GB/s at 1 / 2
// threads, medians of 3 alternated rounds: 5632x2048 none 24.8 / 31.7, 512
// 22.6 / 35.2, 1024 26.5 / 29.9, 2048 18.8 / 27.3; 768x768 none 25.5 /
// 31.2, 512 21.1 / 24.8, 1024 22.0 / 34.5, 2048 19.8 / 27.1.
// BenchmarkMatVecQ8DRAM (gs 64, 1 thread): none 29.2, 512 28.4, 1024 21.7,
// 2048 21.0.
//
// Resident panels in order or 4 a quarter apart (a quarter apart was
// chosen on Zen 5 for Q8_0: see ../asm/gguf/resident.go). Zen 4,
// TinyLlama-shaped tg64 tok/s at 1 / 2 threads, apart -> in order:
// Q4_K_M (Q4_K and Q6_K), medians of 6 alternated rounds, 36.6 / 49.4 ->
// 38.8 / 53.4 (bandwidth share at 1 thread 74% -> 80%); Q8_0, 3 rounds,
// 24.5 / 27.9 -> 25.6 / 29.5; Q4_0, 3 rounds, 44.4 / 50.8 -> 39.8 / 54.7
// (kept apart: the 2-thread cell is the noisier).
//
// The default row is Zen 5's (the distances the kernels had before the
// table), but for the batch panels' distance (below). It is also Intel's:
// on a Xeon VM (family 6 model 207, Emerald Rapids), 2026-12-07,
// TinyLlama-shaped tg64 tok/s at 1 / 2 threads (and
// stories110M fp32), medians of 4 samples in 2 alternated rounds, every
// resident distance together, apart unless "in order":
//
//	            none        256         512         1024        2048        256 in order 1024 in order
//	Q4_K_M      18.9 / 37.1 20.3 / 41.4 22.3 / 43.8 23.0 / 47.0 23.3 / 44.9 17.9 / 35.5  19.9 / 38.9
//	Q4_0        21.4 / 43.2 23.2 / 45.3 23.7 / 44.1 23.8 / 46.6 24.5 / 46.2 17.2 / 34.8  19.1 / 36.5
//	Q8_0        14.4 / 28.4 14.4 / 27.6 14.0 / 26.3 14.7 / 28.0 14.4 / 28.4 12.4 / 23.4  13.5 / 24.9
//	110M fp32   37.6 / 75.5 38.1 / 78.3 34.3 / 68.9 36.4 / 76.0 35.6 / 74.5 34.5 / 70.8  35.0 / 74.5
//
// (stories110M's float32 kernels prefetch 2048 bytes ahead in the 1024 and
// 2048 columns, none in the others: within the noise.) Intel's cores do
// a 512-bit operation at once, as Zen 5's do, and take the same choices:
// 1024 bytes ahead, 4 panels apart (in order loses 10-25%).
//
// The resident panel kernels for a batch (BatchPrefetch) prefetched
// nothing until the same Xeon's profile of `serve` with 8 clients
// (TinyLlama-shaped Q4_K_M) had 85% of a step in them, at half the speed
// they reach from L3. With 1024 bytes, `serve` with 8 clients, 3
// alternated rounds, tok/s medians: Q4_K_M 98 -> 158 (a step 75 -> 47
// ms), Q4_0 126 -> 154, Q8_0 86 -> 99; pp128 at 2 threads moved up by
// 5-15% (2-3 rounds, noisy). Zen 4 was not measured and keeps 0 (the
// line being read: no change there).
//
// Zen 5 VM (family 26 model 2), 2026-12-08, the same runs as Intel's
// table above (tg64, 1 / 2 threads, medians of 4 samples in 2 alternated
// rounds, every row together):
//
//	            none        256         512         1024        2048        256 in order 1024 in order
//	Q4_K_M      44.2 / 80.6 47.5 / 85.3 48.0 / 86.0 50.9 / 92.7 50.5 / 87.2 31.7 / 55.2  36.4 / 66.3
//	Q4_0        53.2 / 98.4 48.9 / 95.8 42.3 / 72.9 49.6 / 91.3 50.0 / 93.2 38.1 / 67.7  34.6 / 61.5
//	Q8_0        24.3 / 44.2 27.8 / 48.6 28.6 / 49.3 33.4 / 60.3 31.4 / 55.6 25.6 / 47.0  22.9 / 41.5
//
// Q4_0's "none" was the noise's: 4 more alternated rounds gave none 45.2 /
// 75.4, 256 47.3 / 78.9, 1024 53.8 / 78.5, 2048 51.7 / 80.1. The batch
// panels' distance (BatchPrefetch), pp128 tok/s at 1 / 2 threads, 2
// alternated rounds:
//
//	            0             256           512           1024          2048
//	Q4_K_M      240.0 / 355.3 245.1 / 441.5 249.7 / 479.8 258.5 / 499.9 261.4 / 504.3
//	Q4_0        252.9 / 445.2 250.3 / 459.2 255.8 / 470.7 256.5 / 481.4 264.7 / 493.9
//	Q8_0        220.9 / 388.9 227.9 / 392.4 229.6 / 375.7 231.7 / 410.1 235.0 / 430.5
//
// Zen 5 keeps the default row's panel choices: 1024 bytes ahead, 4
// panels apart (in order loses 25-45%). For a batch, prompts cannot tell
// 1024 from 2048 (none loses up to 29%), but decode steps can: a panel
// kernel for 8 sequences reads 17-19 GB/s on a thread from L2
// (BenchmarkResidentK), so 1024 bytes are 55 ns ahead, less than the
// memory's latency, and a CPU profile of `serve` with 8 clients had the
// Q4_K one reading 11.7 GB/s. `serve -threads 2 -parallel 8`, 8 clients,
// 64-token completions, tok/s medians of alternated rounds:
//
//	                  1024   2048   4096   8192   16384
//	Q4_K_M, 2 rounds  199.8  247.5  274.0  280.0  -
//	Q4_K_M, 4 rounds  208.9  -      270.7  274.4  271.3
//	Q4_0, 2 rounds    254.9  -      311.3  314.4  -
//	Q8_0, 2 rounds    146.9  -      203.4  228.2  -
//
// and pp128 at 1 / 2 threads did not move (Q4_K_M 245.4 / 403.1 at 1024,
// 251.0 / 401.3 at 8192; Q4_0 255.2 / 436.2, 269.7 / 439.3; Q8_0 236.1 /
// 384.7, 237.6 / 393.1). Zen 5 takes 8192. Intel's row keeps the 1024 it
// was measured at (against none); a longer distance was not tried there.

// Tuning is one row of the per-CPU table.
type Tuning struct {
	Name string // the row: "zen4", "zen5", "default"
	// Q8_0Panels, Q4_0Panels and KPanels are how the matrix-vector
	// kernels of resident Q8_0, Q4_0 and K-quant (Q4_K, Q6_K) panels read
	// them.
	Q8_0Panels, Q4_0Panels, KPanels Panels
	// BatchPrefetch is how far ahead (bytes) the resident panel kernels
	// for a batch of vectors (prompts, decode steps of several
	// sequences) prefetch the panel they read.
	BatchPrefetch int
	// F32Prefetch and Q8Prefetch are the distances of the AVX-512 float32
	// matrix-vector kernels and of llama2.c's Q8_0 (VNNI) ones: one of
	// the distances they are generated for (2048 or 0, none).
	F32Prefetch, Q8Prefetch int
}

// Panels is how a resident matrix-vector kernel reads its panels.
type Panels struct {
	Prefetch int  // how far ahead (bytes) each stream is prefetched
	InOrder  bool // one panel after another, not 4 a quarter of them apart
}

// tunings is the table. match says whether a CPU (CPUID's vendor, family,
// model) is the row's.
var tunings = []struct {
	Tuning
	match func(vendor string, family, model int) bool
}{
	{Tuning{Name: "zen4", Q8_0Panels: Panels{256, true}, Q4_0Panels: Panels{256, false}, KPanels: Panels{256, true}, BatchPrefetch: 0},
		func(v string, f, _ int) bool { return v == "AuthenticAMD" && f == 25 }},
	{Tuning{Name: "zen5", Q8_0Panels: Panels{1024, false}, Q4_0Panels: Panels{1024, false}, KPanels: Panels{1024, false}, BatchPrefetch: 8192, F32Prefetch: 2048, Q8Prefetch: 2048},
		func(v string, f, _ int) bool { return v == "AuthenticAMD" && f == 26 }},
	{Tuning{Name: "default", Q8_0Panels: Panels{1024, false}, Q4_0Panels: Panels{1024, false}, KPanels: Panels{1024, false}, BatchPrefetch: 1024, F32Prefetch: 2048, Q8Prefetch: 2048},
		func(string, int, int) bool { return true }},
}

// tuning is this process's row: LLAMA2_CPU_TABLE's, else the CPU's.
var tuning, tuningErr = chooseTuning(os.Getenv("LLAMA2_CPU_TABLE"), cpuVendor, cpuFamily, cpuModel)

// chooseTuning returns the row named by name, or when name is empty the
// first row matching the CPU. An unknown name is an error (and the CPU's
// row).
func chooseTuning(name, vendor string, family, model int) (Tuning, error) {
	var names []string
	for _, t := range tunings {
		if name != "" && t.Name == name {
			return t.Tuning, nil
		}
		names = append(names, t.Name)
	}
	var cpu Tuning
	for _, t := range tunings {
		if t.match(vendor, family, model) {
			cpu = t.Tuning
			break
		}
	}
	if name != "" {
		return cpu, fmt.Errorf("LLAMA2_CPU_TABLE=%q: the per-CPU table has no such row (it has %s)", name, strings.Join(names, ", "))
	}
	return cpu, nil
}

// CPUTuning returns the per-CPU table's row in use, and an error when
// LLAMA2_CPU_TABLE names no row (the CPU's row is used then).
func CPUTuning() (Tuning, error) { return tuning, tuningErr }

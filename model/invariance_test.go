package model

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
)

// Batch invariance: a position's logits are the same float32 values
// whether it is computed alone (Session.Forward, token by token), in a
// prompt batch of any size or chunking (token split and row split), or in
// a decode step beside other sequences (Batch.Forward), for every element
// and block type. Otherwise a seeded request's text would depend on what
// earlier requests left in a server's prefix cache (issue 30).

// invarianceChunks are the prompt chunk sizes checked: the tile kernels'
// leftovers (1-3), an odd size, and a whole default batch.
var invarianceChunks = []int{1, 2, 3, 7, 128}

// invarianceFile is a model file of one type and how to open it.
type invarianceFile struct {
	name string
	path string
	mmap MmapMode
}

func invarianceFiles(t *testing.T) []invarianceFile {
	var files []invarianceFile
	if testing.Short() {
		// The -short run is arm64's, under emulation (make test-arm64),
		// where the GGUF block types run their pure-Go twins: those are
		// the -tags purego run's, every type. Here: the types with arm64
		// code of their own (float32, llama2.c's int8) and two block
		// types.
		for _, typ := range []string{"f32", "Q4_K_M"} {
			files = append(files, invarianceFile{typ, fixture(t, "gguf/randk-"+typ+".gguf"), MmapOn})
		}
		return append(files, invarianceFile{"llama2c-f32", fixture(t, "gguf/randk.bin"), MmapOn},
			invarianceFile{"llama2c-q80", fixture(t, "rand-gqa-32k-q80.bin"), MmapOn})
	}
	for _, typ := range []string{"f32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"} {
		files = append(files, invarianceFile{typ, fixture(t, "gguf/randk-"+typ+".gguf"), MmapOn})
	}
	// Q8_0 read into memory is repacked into resident panels (on VNNI).
	files = append(files, invarianceFile{"Q8_0-resident", fixture(t, "gguf/randk-Q8_0.gguf"), MmapOff})
	// llama2.c's fp32 and int8 checkpoints.
	files = append(files, invarianceFile{"llama2c-f32", fixture(t, "gguf/randk.bin"), MmapOn},
		invarianceFile{"llama2c-q80", fixture(t, "rand-gqa-32k-q80.bin"), MmapOn})
	// The block types without a fixture of their own: random blocks (the
	// twins of TestQuantTwins), the K-quants alone as well as in _M mixes.
	for _, typ := range append(append([]gguf.Type(nil), twinTypes...), gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K) {
		if typ == gguf.TypeQ8_0 || typ == gguf.TypeQ4_0 {
			continue // fixtures above
		}
		src := "l3rand-f32"
		if typ.BlockSize() == 256 {
			src = "randk-f32"
		}
		blocks, _ := writeTwins(t, src, typ)
		files = append(files, invarianceFile{typ.String() + "-random", blocks, MmapOn})
	}
	return files
}

// TestBatchInvariance checks every type's logits for equality (==) between
// Forward, prompt chunks of invarianceChunks with the layers split by
// tokens and by rows, and decode steps of 1 to 8 sequences.
func TestBatchInvariance(t *testing.T) {
	defer func(v int64) { rowSplitMinBytes = v }(rowSplitMinBytes)
	for _, f := range invarianceFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			m, err := OpenWith(f.path, OpenOptions{Mmap: f.mmap})
			require.NoError(t, err)
			defer m.Close()
			checkBatchInvariance(t, m, KVF32, KVF32, strings.HasSuffix(f.name, "f32"))
		})
	}
}

// TestBatchInvarianceKVTypes: the same with keys and values kept in float16
// and in Q8_0 blocks.
func TestBatchInvarianceKVTypes(t *testing.T) {
	defer func(v int64) { rowSplitMinBytes = v }(rowSplitMinBytes)
	for _, typ := range []string{"f32", "Q4_K_M"} {
		m := openModel(t, fixture(t, "gguf/randk-"+typ+".gguf"))
		kvs := [][2]KVType{{KVF16, KVF16}, {KVQ8_0, KVQ8_0}, {KVF16, KVQ8_0}}
		if testing.Short() {
			kvs = kvs[2:] // both widenings, in one (see invarianceFiles)
		}
		for _, kv := range kvs {
			t.Run(fmt.Sprintf("%s/%v-%v", typ, kv[0], kv[1]), func(t *testing.T) {
				checkBatchInvariance(t, m, kv[0], kv[1], typ == "f32")
			})
		}
	}
}

// kvSession is a session of m with the given cache types.
func kvSession(t *testing.T, m *Model, threads, batch int, k, v KVType) *Session {
	t.Helper()
	s, err := m.NewSession(SessionOptions{Threads: threads, Batch: batch, KeyCache: k, ValueCache: v})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// checkBatchInvariance runs the checks on m, whose matrices are float32 if
// f32. A float32 prompt batch is compared within floatPromptTol where
// kernels.MatMat does not promise MatVec's values (NEON's tiles sum in
// another order), exactly everywhere else; decode steps are exact always
// (they take MatVec for float32 there).
func checkBatchInvariance(t *testing.T, m *Model, kt, vt KVType, f32 bool) {
	c := m.Config
	r := rand.New(rand.NewPCG(7, uint64(c.VocabSize)))
	n := min(c.SeqLen, 140) // past the chunk of 128
	if puregoBuild || testing.Short() {
		n = min(n, 40)
	}
	tokens := make([]int, n)
	for i := range tokens {
		tokens[i] = r.IntN(c.VocabSize)
	}
	want := make([][]float32, n)
	alone := kvSession(t, m, 2, 0, kt, vt)
	for pos, tok := range tokens {
		logits, err := alone.Forward(tok, pos)
		require.NoError(t, err)
		want[pos] = append([]float32(nil), logits...)
	}
	for _, split := range []int64{1 << 62, 0} { // tokens, rows
		rowSplitMinBytes = split
		for _, chunk := range invarianceChunks {
			s := kvSession(t, m, 2, chunk, kt, vt)
			for pos := 0; pos < n; pos += chunk {
				end := min(pos+chunk, n)
				logits, err := s.PrefillLogits(tokens[pos:end], pos)
				require.NoError(t, err)
				if f32 && !kernels.MatMatBatchInvariant() {
					require.LessOrEqual(t, maxRangeError(logits, want[end-1]), floatPromptTol,
						"prefill, rows split %v, chunk %d, position %d", split == 0, chunk, end-1)
					continue
				}
				requireSameLogits(t, want[end-1], logits, "prefill, rows split %v, chunk %d, position %d", split == 0, chunk, end-1)
			}
		}
	}
	// Decode steps: sequence 0 runs the tokens; the others, started at
	// other positions with other tokens, join and leave so that the step
	// has 1 to 8 entries.
	b, err := m.NewBatch(BatchOptions{Size: 8, Threads: 2})
	require.NoError(t, err)
	defer b.Close()
	seqs := make([]*Session, 8)
	pos := make([]int, 8)
	for i := range seqs {
		seqs[i] = kvSession(t, m, 1, 0, kt, vt)
	}
	v := c.VocabSize
	for p, tok := range tokens {
		entries := []BatchEntry{{Session: seqs[0], Token: tok, Pos: p}}
		for i := 1; i < 1+p%8; i++ {
			if pos[i] >= n {
				continue
			}
			entries = append(entries, BatchEntry{Session: seqs[i], Token: r.IntN(v), Pos: pos[i]})
			pos[i]++
		}
		// Sequence 0 takes each place in the step in turn.
		k := p % len(entries)
		entries[0], entries[k] = entries[k], entries[0]
		logits, err := b.Forward(entries)
		require.NoError(t, err)
		requireSameLogits(t, want[p], logits[k*v:(k+1)*v], "decode step of %d, position %d", len(entries), p)
	}
}

// floatPromptTol bounds a float32 prompt batch's logits against a token
// alone's, as a share of the logit range, where the two sum the same
// products in another order: each dot product of n terms moves by a few
// units of float32's last place of its sum, and the layers carry that on.
// Under qemu's NEON the test models moved by up to 1.1e-5 of the range;
// a wrong tile or a lost row moves them by whole percents.
const floatPromptTol = 1e-4

// requireSameLogits fails unless got == want element by element, saying
// how far apart they are.
func requireSameLogits(t *testing.T, want, got []float32, msg string, args ...any) {
	t.Helper()
	for j := range want {
		if got[j] != want[j] {
			t.Fatalf("%s: logit %d is %v, want %v (max difference %.3g)", fmt.Sprintf(msg, args...), j, got[j], want[j], maxAbsDiff(got, want))
		}
	}
}

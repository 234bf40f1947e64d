package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// goldenRun is a generate-mode case of golden/cases.json, read as the CLI
// reads its arguments.
type goldenRun struct {
	name, checkpoint, tokenizer string
	temperature, topp           float32
	seed                        uint64
	steps                       int
	prompt                      string
	stdout                      string // the golden output's file, in golden/
}

func loadGoldenRuns(t *testing.T) []goldenRun {
	data, err := os.ReadFile(fixture(t, "golden/cases.json"))
	require.NoError(t, err)
	var cases []struct {
		Name, Checkpoint, Tokenizer, Stdout string
		Args                                []string
		ComparePrefix                       int `json:"compare_prefix_bytes"`
	}
	require.NoError(t, json.Unmarshal(data, &cases))
	var runs []goldenRun
	for _, c := range cases {
		r := goldenRun{name: c.Name, checkpoint: filepath.Base(c.Checkpoint), tokenizer: filepath.Base(c.Tokenizer),
			temperature: 1, topp: 0.9, steps: 256, stdout: c.Stdout}
		chat := false
		for i := 0; i+1 < len(c.Args); i += 2 {
			v := c.Args[i+1]
			switch c.Args[i] {
			case "-t":
				f, _ := strconv.ParseFloat(v, 32)
				r.temperature = float32(f)
			case "-p":
				f, _ := strconv.ParseFloat(v, 32)
				r.topp = float32(f)
			case "-s":
				r.seed, _ = strconv.ParseUint(v, 10, 64)
			case "-n":
				r.steps, _ = strconv.Atoi(v)
			case "-i":
				r.prompt = v
			case "-m":
				chat = v == "chat"
			}
		}
		if c.ComparePrefix > 0 && goFusesMulAdd {
			// The goldens call this case sensitive to float32 rounding:
			// where Go fuses multiply-adds, the batched prompt path and
			// the one-token path (both exact on amd64) may part at a
			// near-tie, which run_test.go's requireNearTieDivergence
			// checks through the CLI.
			continue
		}
		if !chat && r.seed != 0 || r.temperature == 0 && !chat {
			runs = append(runs, r)
		}
	}
	require.NotEmpty(t, runs)
	return runs
}

func (r goldenRun) maxTokens(seqLen, promptLen int) int {
	steps := r.steps
	if steps <= 0 || steps > seqLen {
		steps = seqLen
	}
	return steps - promptLen + 1
}

// goldenText is what the command prints for a generation of prompt then
// sampled (run.c's loop: every piece after the first token, the text held
// back by the decoder, a newline): the text of golden/<stdout>.
func goldenText(tok *tokenizer.Tokenizer, prompt, sampled []int) string {
	ids := append(slices.Clone(prompt), sampled...)
	dec := tok.NewTextDecoder()
	var out []byte
	for i := 1; i < len(ids); i++ {
		out = dec.Append(out, ids[i-1], ids[i])
	}
	return string(dec.Flush(out)) + "\n"
}

// TestBatchGoldens: every golden generate case, decoded through batch
// steps, alone (Session.Tokens) and beside three other sequences at other
// positions, samples llama2.c's tokens: its text is the golden output's.
func TestBatchGoldens(t *testing.T) {
	for _, r := range loadGoldenRuns(t) {
		t.Run(r.name, func(t *testing.T) {
			m := openModel(t, fixture(t, r.checkpoint))
			tok, err := tokenizer.Load(fixture(t, r.tokenizer), m.Config.VocabSize)
			require.NoError(t, err)
			prompt := tok.Encode(r.prompt, true, false)
			golden, err := os.ReadFile(fixture(t, "golden/"+r.stdout))
			require.NoError(t, err)
			want := string(golden)
			maxTokens := r.maxTokens(m.Config.SeqLen, len(prompt))

			// Alone, through the iterator.
			var got []int
			var last Token
			for tk, err := range newSession(t, m, 2).Tokens(context.Background(), prompt, GenerateOptions{
				MaxTokens: maxTokens, Sampler: sample.New(m.Config.VocabSize, r.temperature, r.topp, r.seed)}) {
				require.NoError(t, err)
				if !tk.Prompt && tk.Stop != StopEnd {
					got = append(got, tk.ID)
				}
				last = tk
			}
			require.Equal(t, want, goldenText(tok, prompt, got))
			require.NotEqual(t, NotStopped, last.Stop)

			// In a batch, with neighbours that start earlier and later.
			b, err := m.NewBatch(BatchOptions{Size: 4, Threads: 2})
			require.NoError(t, err)
			defer b.Close()
			start := func(p []int, seed uint64) *Sequence {
				q, err := newSessionBatch(t, m, 2, 0).Start(p, GenerateOptions{MaxTokens: maxTokens,
					Sampler: sample.New(m.Config.VocabSize, 0.9, 0.9, seed)})
				require.NoError(t, err)
				_, err = q.Prefill(0)
				require.NoError(t, err)
				return q
			}
			seqs := []*Sequence{start(tok.Encode("The dog", true, false), 5), start([]int{tokenizer.BOS}, 6)}
			for range 3 {
				require.NoError(t, b.Step(seqs))
			}
			main, err := newSessionBatch(t, m, 2, 0).Start(prompt, GenerateOptions{MaxTokens: maxTokens,
				Sampler: sample.New(m.Config.VocabSize, r.temperature, r.topp, r.seed)})
			require.NoError(t, err)
			_, err = main.Prefill(0)
			require.NoError(t, err)
			seqs = append(seqs, main)
			got = got[:0]
			for step := 0; !main.Done(); step++ {
				if step == 5 {
					seqs = append(seqs, start(tok.Encode("Lily", true, false), 7))
				}
				active := seqs[:0]
				for _, q := range seqs {
					if !q.Done() {
						active = append(active, q)
					}
				}
				seqs = active
				require.NoError(t, b.Step(seqs))
				if tk := main.Token(); tk.Stop != StopEnd {
					got = append(got, tk.ID)
				}
			}
			require.Equal(t, want, goldenText(tok, prompt, got))
		})
	}
}

// TestBatchLogitsGoldens feeds the golden token sequences through batch
// steps, three sequences at staggered positions, and compares each step's
// logits with llama2.c's.
func TestBatchLogitsGoldens(t *testing.T) {
	cases, want := loadLogitsCases(t)
	for i, c := range cases {
		name := strings.TrimPrefix(c.Checkpoint, "models/")
		t.Run(name, func(t *testing.T) {
			m := openModel(t, fixture(t, name))
			b, err := m.NewBatch(BatchOptions{Size: 3, Threads: 2})
			require.NoError(t, err)
			defer b.Close()
			const lanes = 3
			sessions := make([]*Session, lanes)
			for j := range sessions {
				sessions[j] = newSessionBatch(t, m, 1, 0)
			}
			n := len(c.Tokens)
			// Lane j starts at step j: each step holds sequences at
			// different positions.
			for step := 0; step < n+lanes-1; step++ {
				var active []BatchEntry
				for j, s := range sessions {
					if pos := step - j; pos >= 0 && pos < n {
						active = append(active, BatchEntry{Session: s, Token: c.Tokens[pos], Pos: pos})
					}
				}
				logits, err := b.Forward(active)
				require.NoError(t, err)
				for k, e := range active {
					pos := e.Pos
					got := logits[k*c.VocabSize : (k+1)*c.VocabSize]
					w := want[i][pos*c.VocabSize : (pos+1)*c.VocabSize]
					require.LessOrEqual(t, maxAbsDiff(got, w), 1e-4, "lane %d position %d", k, pos)
				}
			}
		})
	}
}

// TestBatchSameAloneAndTogether: for every tensor type, a sequence's logits
// in a step are bit for bit those of the same sequence alone, whatever
// the batch's size and the sequence's place in it.
func TestBatchSameAloneAndTogether(t *testing.T) {
	files := []string{"stories260K.bin", "stories260K-q80.bin", "rand-gqa-32k.bin", "gguf/randk-f32.gguf", "gguf/randk-F16.gguf",
		"gguf/randk-BF16.gguf", "gguf/randk-Q8_0.gguf", "gguf/randk-Q4_0.gguf", "gguf/randk-Q4_K_M.gguf", "gguf/randk-Q5_K_M.gguf", "gguf/randk-Q6_K.gguf"}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			m := openModel(t, fixture(t, f))
			const n = 7
			// Each lane feeds its own tokens (not sampled ones, which may
			// end a sequence) from its own start position.
			run := func(lanes []int) map[int][]float32 {
				b, err := m.NewBatch(BatchOptions{Size: n, Threads: 2})
				require.NoError(t, err)
				defer b.Close()
				entries := make([]BatchEntry, len(lanes))
				for k, lane := range lanes {
					entries[k].Session = newSessionBatch(t, m, 2, 0)
					// The positions before the lane's first.
					before := make([]int, 3*lane)
					for p := range before {
						before[p] = (lane*5 + p*11) % m.Config.VocabSize
					}
					require.NoError(t, entries[k].Session.Prefill(before, 0))
				}
				out := map[int][]float32{}
				vocab := m.Config.VocabSize
				var logits []float32
				for step := range 6 {
					for k, lane := range lanes {
						entries[k].Pos, entries[k].Token = 3*lane+step, (lane*7+step*13)%vocab
					}
					var err error
					logits, err = b.Forward(entries)
					require.NoError(t, err)
				}
				for k, lane := range lanes {
					out[lane] = append([]float32(nil), logits[k*vocab:(k+1)*vocab]...)
				}
				return out
			}
			all := run([]int{0, 1, 2, 3, 4, 5, 6})
			for _, lanes := range [][]int{{3}, {6}, {5, 0}, {2, 4, 6, 1}} {
				for lane, got := range run(lanes) {
					require.Equal(t, all[lane], got, "lane %d in batch %v", lane, lanes)
				}
			}
		})
	}
}

func TestSequenceErrors(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	_, err := s.Start(nil, GenerateOptions{})
	require.ErrorIs(t, err, ErrEmptyPrompt)
	_, err = s.Start(make([]int, m.Config.SeqLen+1), GenerateOptions{})
	require.ErrorIs(t, err, ErrPromptTooLong)
	_, err = s.Start([]int{1, 9999}, GenerateOptions{})
	require.Error(t, err)
	_, err = s.Start([]int{1}, GenerateOptions{Stop: []string{"x"}})
	require.Error(t, err, "stop strings need a tokenizer")
	_, err = s.Generate(context.Background(), make([]int, m.Config.SeqLen+1), sample.New(512, 0, 0, 1), 0, func(int, int) bool { return true })
	require.ErrorIs(t, err, ErrPromptTooLong)
	_, err = s.Forward(1, m.Config.SeqLen)
	require.ErrorIs(t, err, ErrContextFull)

	q, err := s.Start(tok.Encode("Once", true, false), GenerateOptions{})
	require.NoError(t, err)
	_, err = s.Start([]int{1}, GenerateOptions{})
	require.ErrorIs(t, err, ErrBusy)
	q.Cancel()
	require.Equal(t, StopCancelled, q.Reason())
	_, err = s.Start([]int{1}, GenerateOptions{})
	require.NoError(t, err, "a cancelled sequence frees the session")

	// A cancelled context ends the stream with its error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s2 := newSession(t, m, 1)
	var last Token
	var lastErr error
	n := 0
	for tk, err := range s2.Tokens(ctx, []int{tokenizer.BOS}, GenerateOptions{Sampler: sample.New(512, 1, 0.9, 3)}) {
		if n++; n == 4 {
			cancel()
		}
		last, lastErr = tk, err
	}
	require.ErrorIs(t, lastErr, context.Canceled)
	require.Equal(t, StopCancelled, last.Stop)
	require.Equal(t, -1, last.ID)
}

// TestTokensStopReasons: each way a stream ends is reported on its last
// token, with the usage the server reports.
func TestTokensStopReasons(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 2)
	prompt := tok.Encode("Once upon a time", true, false)
	collect := func(p []int, o GenerateOptions) (string, []Token) {
		var text strings.Builder
		var toks []Token
		for tk, err := range s.Tokens(context.Background(), p, o) {
			require.NoError(t, err)
			text.Write(tk.Text)
			toks = append(toks, tk)
		}
		return text.String(), toks
	}
	text, toks := collect(prompt, GenerateOptions{MaxTokens: 10, Tokenizer: tok})
	require.Len(t, toks, len(prompt)+10)
	for i, tk := range toks {
		require.Equal(t, i < len(prompt), tk.Prompt)
		require.Equal(t, i, tk.Pos)
	}
	require.Equal(t, StopLength, toks[len(toks)-1].Stop)
	require.Equal(t, ", there was a little girl named Lily", text, "the greedy story (the server's tests pin it)")

	text, toks = collect(prompt, GenerateOptions{MaxTokens: 100, Tokenizer: tok, Stop: []string{"Lily"}})
	require.Equal(t, ", there was a little girl named ", text)
	require.Equal(t, StopString, toks[len(toks)-1].Stop)
	require.True(t, toks[0].Cached, "the same prompt again: its prefix is reused")
	require.False(t, toks[len(prompt)-1].Cached, "the last prompt token is always fed")

	// The greedy story ends with the model's end token.
	text, toks = collect(prompt, GenerateOptions{Tokenizer: tok})
	last := toks[len(toks)-1]
	require.Equal(t, StopEnd, last.Stop)
	require.Contains(t, []int{tokenizer.BOS, tokenizer.EOS}, last.ID)
	require.NotEmpty(t, text)

	// A prompt near the end of the context fills it.
	long := make([]int, m.Config.SeqLen-3)
	long[0] = tokenizer.BOS
	for i := 1; i < len(long); i++ {
		long[i] = prompt[1+i%(len(prompt)-1)]
	}
	_, toks = collect(long, GenerateOptions{Sampler: sample.New(512, 1.5, 1, 9)})
	last = toks[len(toks)-1]
	if last.Stop != StopEnd {
		require.Equal(t, StopContextFull, last.Stop)
		require.Equal(t, m.Config.SeqLen, last.Pos, "the last sampled token is not fed")
		require.Len(t, toks, m.Config.SeqLen+1)
	}
	require.Equal(t, "length", StopContextFull.FinishReason())
	require.Equal(t, "stop", StopString.FinishReason())
	require.Equal(t, "", StopCancelled.FinishReason())
}

// TestTokensPrefillChunks: the stream's last prefill chunk takes the
// prompt's last token and samples the first token from its logits; the
// tokens are the same for any batch size (chunking), with one token to
// sample, and equal Generate's.
func TestTokensPrefillChunks(t *testing.T) {
	m, tok := stories260K(t)
	prompt := tok.Encode("Once upon a time there was a big", true, false)
	require.Greater(t, len(prompt), 6)
	sampled := func(batch, maxTokens int) []int {
		s, err := m.NewSession(SessionOptions{Threads: 2, Batch: batch})
		require.NoError(t, err)
		defer s.Close()
		var ids []int
		for tk, err := range s.Tokens(context.Background(), prompt, GenerateOptions{MaxTokens: maxTokens}) {
			require.NoError(t, err)
			if !tk.Prompt {
				ids = append(ids, tk.ID)
				require.Equal(t, len(prompt)+len(ids)-1, tk.Pos)
			}
		}
		return ids
	}
	s := newSession(t, m, 2)
	var want []int
	pos := 0
	_, err := s.Generate(context.Background(), prompt, sample.New(m.Config.VocabSize, 0, 0, 1), len(prompt)+11, func(prev, next int) bool {
		if pos >= len(prompt)-1 { // the token after the prompt's last, and on
			want = append(want, next)
		}
		pos++
		return true
	})
	require.NoError(t, err)
	for _, batch := range []int{1, 2, 3, len(prompt) - 1, len(prompt), DefaultBatch} {
		require.Equal(t, want, sampled(batch, 12), "batch %d", batch)
		require.Equal(t, want[:1], sampled(batch, 1), "batch %d, one token", batch)
	}
}

// TestSessionContinue: a chat continued on the same session feeds only the
// new turn, and gives the tokens a fresh session gives for the whole text.
func TestSessionContinue(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 2)
	first := tok.Encode("Once upon a time", true, false)
	var reply []int
	for tk, err := range s.Tokens(context.Background(), first, GenerateOptions{MaxTokens: 12}) {
		require.NoError(t, err)
		if !tk.Prompt {
			reply = append(reply, tk.ID)
		}
	}
	history := s.Cached()
	require.Equal(t, append(append([]int{}, first...), reply[:len(reply)-1]...), history)
	next := append(append(history, reply[len(reply)-1]), tok.Encode(" The end.", false, false)...)

	var cached int
	var cont []int
	for tk, err := range s.Tokens(context.Background(), next, GenerateOptions{MaxTokens: 20}) {
		require.NoError(t, err)
		if tk.Cached {
			cached++
		}
		if !tk.Prompt {
			cont = append(cont, tk.ID)
		}
	}
	require.Equal(t, len(history), cached)
	var fresh []int
	for tk, err := range newSession(t, m, 2).Tokens(context.Background(), next, GenerateOptions{MaxTokens: 20}) {
		require.NoError(t, err)
		if !tk.Prompt {
			fresh = append(fresh, tk.ID)
		}
	}
	require.Equal(t, fresh, cont)
}

// TestCloseOwnership: closing a model leaves the sessions running on it
// (and a quantized copy) their weights; new sessions fail with ErrClosed.
func TestCloseOwnership(t *testing.T) {
	m, err := Open(fixture(t, "stories260K.bin"))
	require.NoError(t, err)
	s, err := m.NewSession(SessionOptions{Threads: 2})
	require.NoError(t, err)
	q, err := m.Quantize(RowAlignedGroupSize(m.Config))
	require.NoError(t, err)
	qs, err := q.NewSession(SessionOptions{Threads: 2})
	require.NoError(t, err)

	type result struct {
		ids []int
		err error
	}
	done := make(chan result, 2)
	for _, sess := range []*Session{s, qs} {
		go func() {
			var ids []int
			for tk, err := range sess.Tokens(context.Background(), []int{tokenizer.BOS}, GenerateOptions{MaxTokens: 200}) {
				if err != nil {
					done <- result{ids, err}
					return
				}
				ids = append(ids, tk.ID)
			}
			done <- result{ids, nil}
		}()
	}
	require.NoError(t, m.Close(), "closed while both generate")
	_, err = m.NewSession(SessionOptions{})
	require.ErrorIs(t, err, ErrClosed)
	_, err = m.NewBatch(BatchOptions{})
	require.ErrorIs(t, err, ErrClosed)
	for range 2 {
		r := <-done
		require.NoError(t, r.err)
		require.Len(t, r.ids, 201)
	}

	// The quantized model still works on its own.
	qs2, err := q.NewSession(SessionOptions{Threads: 1})
	require.NoError(t, err)
	_, err = qs2.Forward(tokenizer.BOS, 0)
	require.NoError(t, err)
	s.Close()
	qs.Close()
	qs2.Close()
	_, err = s.Forward(tokenizer.BOS, 0)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Start([]int{tokenizer.BOS}, GenerateOptions{})
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, q.Close())
	require.True(t, errors.Is(fmt.Errorf("x: %w", ErrClosed), ErrClosed))
}

// BenchmarkBatchStep measures decode steps of 1, 4, 8 and 16 sequences, in
// tokens per second: on the model named by $LLAMA2_BENCH_CHECKPOINT (a
// stories42M-shaped checkpoint, say), else on rand-gqa-32k.
func BenchmarkBatchStep(b *testing.B) {
	path := os.Getenv("LLAMA2_BENCH_CHECKPOINT")
	if path == "" {
		path = fixture(b, "rand-gqa-32k.bin")
	}
	m := openModel(b, path)
	for _, n := range []int{1, 4, 8, 16} {
		b.Run(fmt.Sprintf("seqs=%d", n), func(b *testing.B) {
			batch, err := m.NewBatch(BatchOptions{Size: n})
			require.NoError(b, err)
			defer batch.Close()
			entries := make([]BatchEntry, n)
			for i := range entries {
				entries[i].Session = newSessionBatch(b, m, 1, 0)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for k := range entries {
					entries[k].Pos, entries[k].Token = i%64, (i*31+7)%m.Config.VocabSize
				}
				if _, err := batch.Forward(entries); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

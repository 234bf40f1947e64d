// Package model runs Llama-family checkpoints (llama2.c's formats and GGUF)
// on the CPU.
//
// A [Model] is a memory-mapped, read-only checkpoint: its weight tensors are
// views into the mapping, so opening is cheap and many processes share the
// pages. A [Session] holds the mutable state of one sequence (the KV cache
// and activations); any number of sessions may share one Model, each used
// by one goroutine at a time. [Session.Forward] feeds one token and returns
// the logits; [Batch.Forward] does that for several sessions in one pass
// over the weights.
//
// Generation sits on top of the forward pass: a [Sequence] (started with
// [Session.Start]) prefills its prompt, then each [Batch.Step] samples its
// next token (package sample), applies stop strings and decodes text
// (package tokenizer). [Session.Tokens] runs one sequence as an iterator;
// the server's scheduler steps many at once. [Session.Generate] is
// llama2.c's run.c loop, token by token, for its goldens.
//
// The kernels live in internal/kernels; the package never writes to
// standard output: callers own printing.
package model

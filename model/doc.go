// Package model runs Llama-2-architecture checkpoints (llama2.c's formats)
// on the CPU.
//
// A [Model] is a memory-mapped, read-only checkpoint: its weight tensors are
// []float32 views into the mapping, so opening is cheap and many processes
// share the pages. A [Session] holds the mutable state of one sequence (the
// KV cache and activations); any number of sessions may share one Model, each
// used by one goroutine at a time. A [Tokenizer] turns text into tokens and
// back, a [Sampler] picks the next token from the logits, and
// [Session.Generate] ties them together as a stream.
//
// The package never writes to standard output; callers own printing.
package model

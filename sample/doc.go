// Package sample picks the next token from a model's logits, a []float32
// of the vocabulary's size.
//
// [Sampler] is llama2.c's run.c sampler, exactly: argmax at temperature 0,
// else a draw of run.c's xorshift* generator from the softmax of
// logits/temperature or its top-p nucleus, so a seed reproduces run.c's
// story.
package sample

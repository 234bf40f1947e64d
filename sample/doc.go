// Package sample picks the next token from a model's logits, a []float32
// of the vocabulary's size.
//
// A [Sampler] is one of two things:
//
//   - llama2.c's run.c sampler, exactly ([New]): argmax at temperature 0,
//     else a draw of run.c's xorshift* generator from the softmax of
//     logits/temperature or its top-p nucleus, so a seed reproduces run.c's
//     story.
//   - a chain of samplers in llama.cpp's default order ([NewChain] with
//     [Params]): logit bias, then the repetition, presence and frequency
//     penalties, then top-k, top-p, min-p, and last the temperature and
//     the draw. Top-k, top-p and min-p see the distribution before the
//     temperature, as in llama.cpp; the temperature only reshapes what
//     they kept.
//
// [LogSumExp] and [TopLogprobs] give log probabilities for reporting.
package sample

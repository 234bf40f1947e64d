// Package tokenizer turns text into token ids and back.
//
// A [Tokenizer] comes from a file with [Load]: llama2.c's tokenizer.bin,
// whose encoder reproduces run.c's ids exactly, or the vocabulary stored in
// a GGUF file's tokenizer.ggml.* metadata, which it tokenizes as llama.cpp
// does: SentencePiece (Llama 2, Mistral, TinyLlama) or byte-level BPE
// (Llama 3, Qwen2.5, GPT-2, SmolLM2, with the pre-tokenizer
// tokenizer.ggml.pre names). [FromGGUF] reads it from a GGUF file already
// parsed, and [New] builds one from a [Vocab].
//
// Special tokens (<s>, </s>, <|eot_id|>, ...) are parsed only where the
// caller asks ([Tokenizer.EncodeSpecial], [Tokenizer.EncodeRendered]); a
// [TextDecoder] prints a stream of tokens as whole UTF-8 characters,
// [Tokenizer.Detokenize] a sequence as llama.cpp's llama_detokenize does,
// and [Tokenizer.IsEOG] tells the tokens that end a generation.
//
// The package imports gguf and nothing of the runtime.
package tokenizer

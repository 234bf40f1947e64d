// Package tokenizer turns text into token ids and back.
//
// A [Tokenizer] comes from a file with [Load]: llama2.c's tokenizer.bin,
// whose encoder reproduces run.c's ids exactly, or the vocabulary stored in
// a GGUF file's tokenizer.ggml.* metadata (SentencePiece, as llama.cpp
// tokenizes it). [FromGGUF] reads it from a GGUF file already parsed, and
// [New] builds one from a [Vocab].
//
// Special tokens (<s>, </s>, <|user|>, ...) are parsed only where the
// caller asks ([Tokenizer.EncodeSpecial], [Tokenizer.EncodeRendered]); a
// [TextDecoder] prints a stream of tokens as whole UTF-8 characters.
//
// The package imports gguf and nothing of the runtime.
package tokenizer

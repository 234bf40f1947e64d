// Package gguf reads GGUF files, the model format of llama.cpp, and writes
// small ones for tests and tools.
//
// Parse takes the whole file as a byte slice (typically a memory map) and
// validates all of it before returning: every count and length is checked
// against the bytes left before anything is allocated, tensor shapes and
// types are checked, and every tensor's data must be aligned, lie inside
// the file and not overlap another's. Tensor data are views into the slice,
// never copies, so a multi-gigabyte model costs no more than its metadata.
//
// Errors wrap one of ErrFormat, ErrVersion, ErrNotGGUF (Parse) or
// ErrMissing, ErrType (the typed getters such as File.Uint and
// File.Strings), and name the key or tensor at fault.
//
// The format (versions 2 and 3, little-endian) is: the magic "GGUF", a
// uint32 version, uint64 tensor and metadata counts, the metadata as
// key/type/value triples, the tensor infos (name, shape with ne[0] first,
// type, offset), padding to the alignment, then the tensor data.
package gguf

package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// KV is one metadata key and its value.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor and holds its bytes.
type TensorInfo struct {
	Name string
	// Dims is the shape with ne[0] first: Dims[0] is the row length (the
	// contiguous dimension), Dims[1] the number of rows, and so on.
	Dims []int64
	Type Type
	// Offset is where the data starts relative to the data section, as
	// stored in the file.
	Offset int64
	// Data is the tensor's bytes: a view into the buffer given to Parse,
	// never a copy, of length Size().
	Data []byte
}

// Elements returns the number of elements, the product of Dims, or -1 if it
// overflows an int64 or a dimension is negative (never for a parsed file).
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// Size returns the number of bytes of the tensor's data, or -1 if the type
// is unknown or the shape does not fit it (never for a parsed file).
func (t *TensorInfo) Size() int64 {
	n := t.Elements()
	if n < 0 || len(t.Dims) == 0 || t.Dims[0]%max(int64(t.Type.BlockSize()), 1) != 0 {
		return -1
	}
	s, ok := t.Type.RowBytes(n)
	if !ok {
		return -1
	}
	return s
}

// Rows returns the number of rows, the product of Dims[1:].
func (t *TensorInfo) Rows() int64 {
	if len(t.Dims) == 0 || t.Dims[0] == 0 {
		return 0
	}
	return t.Elements() / t.Dims[0]
}

// File is a parsed GGUF file. Its fields are filled by Parse; treat them as
// read-only, because Lookup and Tensor use indexes built at parse time.
type File struct {
	// Version is the GGUF version, 2 or 3.
	Version uint32
	// Alignment is general.alignment, or DefaultAlignment (32) when absent.
	Alignment int
	// KV holds the metadata in file order.
	KV []KV
	// Tensors holds the tensor infos in file order.
	Tensors []TensorInfo
	// DataOffset is the start of the tensor data section in the buffer.
	// For a file without tensors whose final padding is missing (as
	// llama.cpp writes vocabulary-only files) it is the buffer's length.
	DataOffset int64

	kvIndex     map[string]int
	tensorIndex map[string]int
}

// Lookup returns the value of a metadata key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// get returns key's value or an ErrMissing error naming the key.
func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: key %q: %w", key, ErrMissing)
	}
	return v, nil
}

// typeErr is the ErrType error for key holding v where want was asked for.
func typeErr(key string, v Value, want string) error {
	have := v.Type().String()
	if v.Type() == Array {
		have = "array of " + v.ElemType().String()
	}
	return fmt.Errorf("gguf: key %q is %s, want %s: %w", key, have, want, ErrType)
}

// String returns the value of a string key.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.AsString()
	if !ok {
		return "", typeErr(key, v, "string")
	}
	return s, nil
}

// Uint returns the value of a key of any integer type. A negative value is
// an ErrType error.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if !v.Type().isInteger() {
		return 0, typeErr(key, v, "an integer")
	}
	u, ok := v.AsUint()
	if !ok {
		return 0, fmt.Errorf("gguf: key %q: %v is negative, want an unsigned value: %w", key, v.Interface(), ErrType)
	}
	return u, nil
}

// Int returns the value of a key of any integer type. A uint64 above
// math.MaxInt64 is an ErrType error.
func (f *File) Int(key string) (int64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if !v.Type().isInteger() {
		return 0, typeErr(key, v, "an integer")
	}
	n, ok := v.AsInt()
	if !ok {
		return 0, fmt.Errorf("gguf: key %q: %v does not fit an int64: %w", key, v.Interface(), ErrType)
	}
	return n, nil
}

// Float returns the value of a float32, float64 or integer key.
func (f *File) Float(key string) (float64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.AsFloat()
	if !ok {
		return 0, typeErr(key, v, "a number")
	}
	return x, nil
}

// Bool returns the value of a bool key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.AsBool()
	if !ok {
		return false, typeErr(key, v, "bool")
	}
	return b, nil
}

// Strings returns a copy of an array of strings.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Strings()
	if !ok {
		return nil, typeErr(key, v, "array of string")
	}
	return s, nil
}

// Float32s returns an array of float32, or of float64 converted to float32.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if v.Type() != Array || (v.ElemType() != Float32 && v.ElemType() != Float64) {
		return nil, typeErr(key, v, "array of float32")
	}
	// Decode straight from the raw little-endian view: the scores of a
	// 32000-token vocabulary are read at every model load.
	out := make([]float32, v.Len())
	if v.ElemType() == Float32 {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(v.raw[4*i:]))
		}
	} else {
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(v.raw[8*i:])))
		}
	}
	return out, nil
}

// Int32s returns an array of any integer type whose elements all fit an
// int32; an element that does not is an ErrType error naming its index.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if v.Type() != Array || !v.ElemType().isInteger() {
		return nil, typeErr(key, v, "array of int32")
	}
	out := make([]int32, v.Len())
	sz := v.ElemType().size()
	for i := range out {
		e := Value{typ: v.ElemType(), bits: readBits(v.raw[i*sz:], sz)}
		n, ok := e.AsInt()
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, fmt.Errorf("gguf: key %q: element %d (%v) does not fit an int32: %w", key, i, e.Interface(), ErrType)
		}
		out[i] = int32(n)
	}
	return out, nil
}

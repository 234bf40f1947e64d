package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// Builder writes GGUF v3 files. It is meant for tests and small tools: it
// holds everything in memory and writes it in one go.
type Builder struct {
	kvs     []KV
	tensors []builderTensor

	// The fields below let this package's tests write malformed files.
	version   uint32 // 0 means 3
	unchecked bool   // skip WriteTo's checks of tensor data sizes
}

type builderTensor struct {
	name      string
	typ       Type
	dims      []int64
	data      []byte
	offset    int64 // used instead of the computed offset when hasOffset
	hasOffset bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

// Add sets a metadata key. v must be one of uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool, string, or a slice
// of one of those; any other type panics, as a programmer error. Adding a
// key again replaces its value and keeps its place.
func (b *Builder) Add(key string, v any) {
	val, ok := valueOf(v)
	if !ok {
		panic(fmt.Sprintf("gguf: Builder.Add(%q): unsupported type %T", key, v))
	}
	for i := range b.kvs {
		if b.kvs[i].Key == key {
			b.kvs[i].Value = val
			return
		}
	}
	b.kvs = append(b.kvs, KV{Key: key, Value: val})
}

// addRaw appends a key even if it exists, for tests of duplicate keys.
func (b *Builder) addRaw(key string, v Value) { b.kvs = append(b.kvs, KV{Key: key, Value: v}) }

// AddTensor appends a tensor. dims are ne[0] first (row length first); data
// must hold exactly the tensor's bytes, which WriteTo checks. The Builder
// keeps data (no copy) until WriteTo.
func (b *Builder) AddTensor(name string, t Type, dims []int64, data []byte) {
	b.tensors = append(b.tensors, builderTensor{name: name, typ: t, dims: slices.Clone(dims), data: data})
}

// valueOf converts a Go value into a Value; numeric arrays are encoded
// little-endian into raw, as Parse leaves them.
func valueOf(v any) (Value, bool) {
	switch x := v.(type) {
	case uint8:
		return Value{typ: Uint8, bits: uint64(x)}, true
	case int8:
		return Value{typ: Int8, bits: uint64(uint8(x))}, true
	case uint16:
		return Value{typ: Uint16, bits: uint64(x)}, true
	case int16:
		return Value{typ: Int16, bits: uint64(uint16(x))}, true
	case uint32:
		return Value{typ: Uint32, bits: uint64(x)}, true
	case int32:
		return Value{typ: Int32, bits: uint64(uint32(x))}, true
	case uint64:
		return Value{typ: Uint64, bits: x}, true
	case int64:
		return Value{typ: Int64, bits: uint64(x)}, true
	case float32:
		return Value{typ: Float32, bits: uint64(math.Float32bits(x))}, true
	case float64:
		return Value{typ: Float64, bits: math.Float64bits(x)}, true
	case bool:
		var bit uint64
		if x {
			bit = 1
		}
		return Value{typ: Bool, bits: bit}, true
	case string:
		return Value{typ: String, str: x}, true
	case []string:
		return Value{typ: Array, elem: String, n: len(x), strs: slices.Clone(x)}, true
	case []uint8:
		return arrayOf(Uint8, x), true
	case []int8:
		return arrayOf(Int8, x), true
	case []uint16:
		return arrayOf(Uint16, x), true
	case []int16:
		return arrayOf(Int16, x), true
	case []uint32:
		return arrayOf(Uint32, x), true
	case []int32:
		return arrayOf(Int32, x), true
	case []uint64:
		return arrayOf(Uint64, x), true
	case []int64:
		return arrayOf(Int64, x), true
	case []float32:
		return arrayOf(Float32, x), true
	case []float64:
		return arrayOf(Float64, x), true
	case []bool:
		return arrayOf(Bool, x), true
	}
	return Value{}, false
}

func arrayOf[T any](elem ValueType, xs []T) Value {
	raw, err := binary.Append(nil, binary.LittleEndian, xs)
	if err != nil {
		panic("gguf: " + err.Error()) // unreachable: T is a fixed-size type
	}
	return Value{typ: Array, elem: elem, n: len(xs), raw: raw}
}

// encoder appends GGUF's little-endian primitives to a buffer.
type encoder struct{ bytes.Buffer }

func (e *encoder) u32(v uint32) { e.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.WriteString(s) }

func (e *encoder) value(v Value) {
	e.u32(uint32(v.typ))
	switch v.typ {
	case Array:
		e.u32(uint32(v.elem))
		e.u64(uint64(v.n))
		if v.elem == String {
			for _, s := range v.strs {
				e.str(s)
			}
		} else {
			e.Write(v.raw)
		}
	case String:
		e.str(v.str)
	default:
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v.bits)
		e.Write(b[:v.typ.size()])
	}
}

func (e *encoder) pad(alignment int) {
	for e.Len()%alignment != 0 {
		e.WriteByte(0)
	}
}

// alignment returns general.alignment when it is set to a positive integer,
// else DefaultAlignment. It does not insist on a power of two so that tests
// can write files that Parse must reject.
func (b *Builder) alignment() (int, error) {
	for _, kv := range b.kvs {
		if kv.Key != keyAlignment {
			continue
		}
		a, ok := kv.Value.AsUint()
		if !ok || a == 0 {
			return DefaultAlignment, nil
		}
		if a > maxAlignment {
			if b.unchecked {
				return DefaultAlignment, nil
			}
			return 0, fmt.Errorf("gguf: Builder: %s %d exceeds %d", keyAlignment, a, maxAlignment)
		}
		return int(a), nil
	}
	return DefaultAlignment, nil
}

// WriteTo writes the file: header, metadata, tensor infos, padding to the
// alignment (general.alignment if set, else 32), then each tensor's data at
// an aligned offset. It fails if a tensor's data does not have the size its
// type and shape need.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	a, err := b.alignment()
	if err != nil {
		return 0, err
	}
	offsets := make([]int64, len(b.tensors))
	var next int64
	for i, t := range b.tensors {
		if !b.unchecked {
			ti := TensorInfo{Name: t.name, Dims: t.dims, Type: t.typ}
			if want := ti.Size(); want < 0 || want != int64(len(t.data)) {
				return 0, fmt.Errorf("gguf: Builder: tensor %q: %d bytes of data, want %d for %s %v",
					t.name, len(t.data), want, t.typ, t.dims)
			}
		}
		next = (next + int64(a) - 1) / int64(a) * int64(a)
		offsets[i] = next
		if t.hasOffset {
			offsets[i] = t.offset
		}
		next += int64(len(t.data))
	}

	var e encoder
	e.WriteString(magic)
	version := b.version
	if version == 0 {
		version = 3
	}
	e.u32(version)
	e.u64(uint64(len(b.tensors)))
	e.u64(uint64(len(b.kvs)))
	for _, kv := range b.kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	for i, t := range b.tensors {
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.typ))
		e.u64(uint64(offsets[i]))
	}
	e.pad(a)
	// Data goes in offset order of the computed layout; overridden
	// offsets (tests) only change what the infos claim.
	for _, t := range b.tensors {
		e.pad(a)
		e.Write(t.data)
	}
	n, err := w.Write(e.Bytes())
	return int64(n), err
}

// Bytes returns the encoded file, for tests and tools that want it in
// memory.
func (b *Builder) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

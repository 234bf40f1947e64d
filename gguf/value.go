package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ValueType is the type id of a GGUF metadata value.
type ValueType uint32

// Metadata value types, with the ids GGUF stores.
const (
	Uint8   ValueType = 0
	Int8    ValueType = 1
	Uint16  ValueType = 2
	Int16   ValueType = 3
	Uint32  ValueType = 4
	Int32   ValueType = 5
	Float32 ValueType = 6
	Bool    ValueType = 7
	String  ValueType = 8
	Array   ValueType = 9
	Uint64  ValueType = 10
	Int64   ValueType = 11
	Float64 ValueType = 12
)

var valueTypeNames = [...]string{
	Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Uint32: "uint32", Int32: "int32", Float32: "float32", Bool: "bool",
	String: "string", Array: "array", Uint64: "uint64", Int64: "int64",
	Float64: "float64",
}

// String returns the type's name ("uint32", "string", "array"), or
// "valuetype(N)" for an unknown id.
func (t ValueType) String() string {
	if int64(t) < int64(len(valueTypeNames)) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// valid reports whether t is one of the thirteen GGUF value types.
func (t ValueType) valid() bool { return t <= Float64 }

// size is the number of bytes a value of type t occupies; for a string it
// is the minimum (its length prefix), which is what count checks need. It is
// 0 for Array and unknown types.
func (t ValueType) size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64, String:
		return 8
	}
	return 0
}

func (t ValueType) isInteger() bool {
	switch t {
	case Uint8, Int8, Uint16, Int16, Uint32, Int32, Uint64, Int64:
		return true
	}
	return false
}

func (t ValueType) isUnsigned() bool {
	switch t {
	case Uint8, Uint16, Uint32, Uint64:
		return true
	}
	return false
}

// Value is one metadata value: a scalar, a string, or an array of scalars or
// strings. The zero Value is a uint8 0.
//
// Numeric arrays are not decoded at parse time: they stay a view into the
// parsed buffer and are read on access, so a 32000-entry score table costs
// nothing until it is used. String arrays are copied into Go strings.
type Value struct {
	typ  ValueType
	elem ValueType // element type, for arrays
	n    int       // element count, for arrays
	bits uint64    // scalar numbers and bools: the stored bits, zero-extended
	str  string
	strs []string // string arrays
	raw  []byte   // numeric and bool arrays: n little-endian elements
}

// Type returns the value's type; Array for arrays.
func (v Value) Type() ValueType { return v.typ }

// ElemType returns the element type of an array. It is meaningless (Uint8)
// for other values.
func (v Value) ElemType() ValueType { return v.elem }

// Len returns the number of elements of an array, and 0 for other values.
func (v Value) Len() int { return v.n }

// Elem returns element i of an array as a scalar Value. It panics if v is not
// an array or i is out of range, like indexing a slice.
func (v Value) Elem(i int) Value {
	if v.typ != Array {
		panic("gguf: Elem of a " + v.typ.String() + " value")
	}
	if i < 0 || i >= v.n {
		panic(fmt.Sprintf("gguf: Elem(%d) of an array of %d", i, v.n))
	}
	if v.elem == String {
		return Value{typ: String, str: v.strs[i]}
	}
	sz := v.elem.size()
	return Value{typ: v.elem, bits: readBits(v.raw[i*sz:], sz)}
}

// readBits reads an sz-byte little-endian number, zero-extended.
func readBits(b []byte, sz int) uint64 {
	switch sz {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	default:
		return binary.LittleEndian.Uint64(b)
	}
}

// signed returns a scalar integer's value sign-extended from its width.
func (v Value) signed() int64 {
	switch v.typ {
	case Int8:
		return int64(int8(v.bits))
	case Int16:
		return int64(int16(v.bits))
	case Int32:
		return int64(int32(v.bits))
	}
	return int64(v.bits)
}

// AsString returns the value of a String.
func (v Value) AsString() (string, bool) {
	if v.typ != String {
		return "", false
	}
	return v.str, true
}

// AsBool returns the value of a Bool. Any nonzero byte is true, as in C.
func (v Value) AsBool() (bool, bool) {
	if v.typ != Bool {
		return false, false
	}
	return v.bits != 0, true
}

// AsUint returns the value of any integer type; it reports false for other
// types and for negative values.
func (v Value) AsUint() (uint64, bool) {
	if !v.typ.isInteger() {
		return 0, false
	}
	if v.typ.isUnsigned() {
		return v.bits, true
	}
	s := v.signed()
	if s < 0 {
		return 0, false
	}
	return uint64(s), true
}

// AsInt returns the value of any integer type; it reports false for other
// types and for a uint64 above math.MaxInt64.
func (v Value) AsInt() (int64, bool) {
	if !v.typ.isInteger() {
		return 0, false
	}
	if v.typ == Uint64 && v.bits > maxInt64 {
		return 0, false
	}
	return v.signed(), true
}

// AsFloat returns the value of a Float32 or Float64, or of any integer type
// converted to float64.
func (v Value) AsFloat() (float64, bool) {
	switch {
	case v.typ == Float32:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case v.typ == Float64:
		return math.Float64frombits(v.bits), true
	case v.typ == Uint64:
		return float64(v.bits), true
	case v.typ.isInteger():
		return float64(v.signed()), true
	}
	return 0, false
}

// Strings returns a copy of the elements of an array of strings.
func (v Value) Strings() ([]string, bool) {
	if v.typ != Array || v.elem != String {
		return nil, false
	}
	return slices.Clone(v.strs), true
}

// Interface returns the value as the Go type it is stored as: uint8 ...
// float64, bool, string, or a slice of one of those for an array.
func (v Value) Interface() any {
	if v.typ == Array {
		return v.arrayInterface()
	}
	switch v.typ {
	case Uint8:
		return uint8(v.bits)
	case Int8:
		return int8(v.bits)
	case Uint16:
		return uint16(v.bits)
	case Int16:
		return int16(v.bits)
	case Uint32:
		return uint32(v.bits)
	case Int32:
		return int32(v.bits)
	case Uint64:
		return v.bits
	case Int64:
		return int64(v.bits)
	case Float32:
		return math.Float32frombits(uint32(v.bits))
	case Float64:
		return math.Float64frombits(v.bits)
	case Bool:
		return v.bits != 0
	case String:
		return v.str
	}
	return nil
}

func (v Value) arrayInterface() any {
	if v.elem == String {
		return slices.Clone(v.strs)
	}
	switch v.elem {
	case Uint8:
		return decodeArray[uint8](v)
	case Int8:
		return decodeArray[int8](v)
	case Uint16:
		return decodeArray[uint16](v)
	case Int16:
		return decodeArray[int16](v)
	case Uint32:
		return decodeArray[uint32](v)
	case Int32:
		return decodeArray[int32](v)
	case Uint64:
		return decodeArray[uint64](v)
	case Int64:
		return decodeArray[int64](v)
	case Float32:
		return decodeArray[float32](v)
	case Float64:
		return decodeArray[float64](v)
	case Bool:
		return decodeArray[bool](v)
	}
	return nil
}

func decodeArray[T any](v Value) []T {
	out := make([]T, v.n)
	for i := range out {
		out[i] = v.Elem(i).Interface().(T)
	}
	return out
}

// String formats the value for people: strings quoted, arrays as their type
// and length with the first few elements.
func (v Value) String() string {
	switch v.typ {
	case String:
		return strconv.Quote(v.str)
	case Array:
		var sb strings.Builder
		fmt.Fprintf(&sb, "[%d]%s{", v.n, v.elem)
		const show = 4
		for i := 0; i < v.n && i < show; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(v.Elem(i).String())
		}
		if v.n > show {
			sb.WriteString(", ...")
		}
		sb.WriteString("}")
		return sb.String()
	}
	return fmt.Sprint(v.Interface())
}

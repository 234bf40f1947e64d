package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"unicode/utf8"
)

// Sentinel errors. Every error Parse and the getters return wraps one of
// them, so callers can tell the cases apart with errors.Is.
var (
	// ErrFormat marks a malformed or truncated file.
	ErrFormat = errors.New("malformed GGUF file")
	// ErrVersion marks a GGUF version this package does not read: v1, a
	// future version, or a big-endian file.
	ErrVersion = errors.New("unsupported GGUF version")
	// ErrNotGGUF marks data that does not start with the GGUF magic.
	ErrNotGGUF = errors.New("not a GGUF file")
	// ErrMissing marks a metadata key that is absent.
	ErrMissing = errors.New("missing GGUF key")
	// ErrType marks a metadata key whose value has another type than asked.
	ErrType = errors.New("wrong GGUF value type")
)

const (
	magic = "GGUF"
	// headerSize is magic, version, tensor count and KV count.
	headerSize = 4 + 4 + 8 + 8
	// DefaultAlignment is the alignment of the data section and of each
	// tensor when general.alignment is absent.
	DefaultAlignment = 32
	// maxAlignment bounds general.alignment so that padding arithmetic fits
	// in an int on 32-bit platforms; llama.cpp stores it as a uint32.
	maxAlignment = 1 << 30
	// minKVSize is the smallest encoding of one KV: a key length, a one-byte
	// key, a value type and a one-byte value.
	minKVSize = 8 + 1 + 4 + 1
	// minTensorInfoSize is the smallest encoding of one tensor info: a name
	// length (empty name), n_dims, one dimension, the type and the offset.
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8
	// maxDims is GGML_MAX_DIMS.
	maxDims = 4
	// keyAlignment is the metadata key that sets the alignment.
	keyAlignment = "general.alignment"
)

// IsGGUF reports whether data starts with the GGUF magic "GGUF".
func IsGGUF(data []byte) bool {
	return len(data) >= len(magic) && string(data[:len(magic)]) == magic
}

// IsGGUFFile reports whether the file at path starts with GGUF's magic,
// reading only its first four bytes. A file shorter than that is not GGUF.
func IsGGUFFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var head [4]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return IsGGUF(head[:n]), nil
}

// formatErr builds an ErrFormat error with the byte offset where reading
// went wrong, which is what one needs to look at the file in a hex dump.
func formatErr(off int, format string, args ...any) error {
	return fmt.Errorf("gguf: %s (at byte %d): %w", fmt.Sprintf(format, args...), off, ErrFormat)
}

// reader walks data; every read checks the bytes left first.
type reader struct {
	data []byte
	off  int
}

func (r *reader) left() int { return len(r.data) - r.off }

func (r *reader) u32() (uint32, bool) {
	if r.left() < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.data[r.off:])
	r.off += 4
	return v, true
}

func (r *reader) u64() (uint64, bool) {
	if r.left() < 8 {
		return 0, false
	}
	v := binary.LittleEndian.Uint64(r.data[r.off:])
	r.off += 8
	return v, true
}

// str reads a length-prefixed string as a view into data; what names the
// string in errors.
func (r *reader) str(what func() string) ([]byte, error) {
	start := r.off
	n, ok := r.u64()
	if !ok {
		return nil, formatErr(start, "%s: truncated string length (%d bytes left)", what(), r.left())
	}
	if n > uint64(r.left()) {
		return nil, formatErr(start, "%s: string length %d exceeds the %d bytes left", what(), n, r.left())
	}
	b := r.data[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// Parse reads and validates a GGUF v2 or v3 file held in data. Tensor Data
// are views into data (never copies), so data must stay alive and unchanged
// while the File is used; metadata strings are copied.
//
// Parse checks every count against the bytes left before allocating, so a
// corrupt or hostile file gives an error, never a panic or a huge
// allocation.
func Parse(data []byte) (*File, error) { return parse(data, int64(len(data)), false) }

// parse is Parse of a file of size bytes; with metaOnly, data may be a
// prefix of the file that holds its header, metadata and tensor infos,
// and the tensors are checked against size but get no Data.
func parse(data []byte, size int64, metaOnly bool) (*File, error) {
	if !IsGGUF(data) {
		if len(data) == 0 {
			return nil, fmt.Errorf("gguf: empty data: %w", ErrNotGGUF)
		}
		if len(data) < len(magic) && string(data) == magic[:len(data)] {
			return nil, formatErr(0, "file of %d bytes is truncated inside the magic", len(data))
		}
		n := min(len(data), len(magic))
		return nil, fmt.Errorf("gguf: bad magic %q, want %q: %w", data[:n], magic, ErrNotGGUF)
	}
	r := &reader{data: data, off: len(magic)}
	version, ok := r.u32()
	if !ok {
		return nil, formatErr(r.off, "header truncated: no version")
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	nTensors, ok1 := r.u64()
	nKV, ok2 := r.u64()
	if !ok1 || !ok2 {
		return nil, formatErr(len(data), "header truncated: %d bytes, want %d", len(data), headerSize)
	}
	// Bound both counts by the smallest possible encoding of their entries
	// before allocating anything sized by them.
	left := uint64(r.left())
	if nKV > left/minKVSize {
		return nil, formatErr(r.off, "kv_count %d needs at least %d bytes each, only %d bytes left", nKV, minKVSize, left)
	}
	if nTensors > left/minTensorInfoSize || nKV*minKVSize+nTensors*minTensorInfoSize > left {
		return nil, formatErr(r.off, "tensor_count %d and kv_count %d need at least %d and %d bytes each, only %d bytes left",
			nTensors, nKV, minTensorInfoSize, minKVSize, left)
	}

	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		KV:        make([]KV, 0, prealloc(nKV)),
		kvIndex:   make(map[string]int, prealloc(nKV)),
	}
	for i := range int(nKV) {
		if err := f.readKV(r, i); err != nil {
			return nil, err
		}
	}
	if err := f.setAlignment(); err != nil {
		return nil, err
	}

	f.Tensors = make([]TensorInfo, 0, prealloc(nTensors))
	f.tensorIndex = make(map[string]int, prealloc(nTensors))
	for i := range int(nTensors) {
		if err := f.readTensorInfo(r, i); err != nil {
			return nil, err
		}
	}
	if metaOnly {
		data = nil
	}
	if err := f.placeTensors(data, r.off, size); err != nil {
		return nil, err
	}
	return f, nil
}

// ReadMetadata reads the header, metadata and tensor infos of the GGUF file
// at path, but not its tensor data (every TensorInfo.Data is nil): only
// the first bytes of the file that hold them, a few megabytes for a
// vocabulary of 150k tokens, whatever the size of the model. It validates
// what it reads as Parse does.
func ReadMetadata(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	// Read a prefix, and a larger one while the prefix is too short to
	// hold what parse needs: an error from a prefix shorter than the file
	// may be the prefix's end; one from the whole file is the file's.
	for n := min(size, metadataPrefix); ; n = min(size, 4*n) {
		buf := make([]byte, n)
		if _, err := fh.ReadAt(buf, 0); err != nil {
			return nil, err
		}
		f, err := parse(buf, size, true)
		if err == nil || n == size || !errors.Is(err, ErrFormat) {
			return f, err
		}
	}
}

// metadataPrefix is the first prefix ReadMetadata reads: Llama 3's
// vocabulary (128k tokens, 280k merges) takes 7.6 MB of metadata.
var metadataPrefix int64 = 8 << 20

// maxPrealloc caps the capacity reserved from a count in the header.
const maxPrealloc = 1024

// prealloc returns the capacity to reserve for count entries. The counts are
// already bounded by the file's size, but an entry in memory is several
// times larger than its smallest encoding, so a lying count could still
// reserve several times the file's size; beyond maxPrealloc, let append grow
// with the entries actually read.
func prealloc(count uint64) int { return int(min(count, maxPrealloc)) }

func checkVersion(v uint32) error {
	switch {
	case v == 2 || v == 3:
		return nil
	case v == 1:
		return fmt.Errorf("gguf: version 1 (32-bit counts) is not supported; convert the file with a current llama.cpp: %w", ErrVersion)
	case v&0xffff == 0 && v != 0:
		// A big-endian writer stores 3 as 0x03000000; every real version
		// is small, so low bytes of zero mean the other byte order.
		return fmt.Errorf("gguf: version 0x%08x: big-endian GGUF is not supported: %w", v, ErrVersion)
	}
	return fmt.Errorf("gguf: version %d is not supported (want 2 or 3): %w", v, ErrVersion)
}

func (f *File) readKV(r *reader, i int) error {
	keyOff := r.off
	keyBytes, err := r.str(func() string { return fmt.Sprintf("key %d", i) })
	if err != nil {
		return err
	}
	if len(keyBytes) == 0 {
		return formatErr(keyOff, "key %d is empty", i)
	}
	if !utf8.Valid(keyBytes) {
		return formatErr(keyOff, "key %d %q is not valid UTF-8", i, keyBytes)
	}
	key := string(keyBytes)
	if j, dup := f.kvIndex[key]; dup {
		return formatErr(keyOff, "duplicate key %q (entries %d and %d)", key, j, i)
	}
	typeOff := r.off
	t, ok := r.u32()
	if !ok {
		return formatErr(typeOff, "key %q: truncated value type", key)
	}
	v, err := readValue(r, key, ValueType(t), typeOff)
	if err != nil {
		return err
	}
	f.kvIndex[key] = len(f.KV)
	f.KV = append(f.KV, KV{Key: key, Value: v})
	return nil
}

func readValue(r *reader, key string, t ValueType, typeOff int) (Value, error) {
	if t == Array {
		return readArray(r, key)
	}
	if !t.valid() {
		return Value{}, formatErr(typeOff, "key %q: unknown value type %d", key, uint32(t))
	}
	if t == String {
		b, err := r.str(func() string { return fmt.Sprintf("key %q", key) })
		if err != nil {
			return Value{}, err
		}
		return Value{typ: String, str: string(b)}, nil
	}
	sz := t.size()
	if r.left() < sz {
		return Value{}, formatErr(r.off, "key %q: truncated %s value (%d bytes left)", key, t, r.left())
	}
	v := Value{typ: t, bits: readBits(r.data[r.off:], sz)}
	r.off += sz
	return v, nil
}

func readArray(r *reader, key string) (Value, error) {
	start := r.off
	et, ok1 := r.u32()
	count, ok2 := r.u64()
	if !ok1 || !ok2 {
		return Value{}, formatErr(start, "key %q: truncated array header", key)
	}
	elem := ValueType(et)
	if elem == Array {
		// llama.cpp rejects nested arrays too; no model uses them.
		return Value{}, formatErr(start, "key %q: nested arrays are not supported", key)
	}
	if !elem.valid() {
		return Value{}, formatErr(start, "key %q: unknown array element type %d", key, et)
	}
	sz := elem.size()
	if count > uint64(r.left()/sz) {
		return Value{}, formatErr(start, "key %q: array of %d %s elements needs at least %d bytes each, only %d bytes left",
			key, count, elem, sz, r.left())
	}
	n := int(count)
	v := Value{typ: Array, elem: elem, n: n}
	if elem != String {
		end := r.off + n*sz
		v.raw = r.data[r.off:end:end]
		r.off = end
		return v, nil
	}
	// Strings: validate every length first, then copy the whole run into
	// one Go string and slice the elements out of it. One allocation
	// instead of one per element keeps a 32000-token vocabulary fast.
	first := r.off
	for i := range n {
		l, ok := r.u64()
		if !ok {
			return Value{}, formatErr(r.off, "key %q: element %d of %d: truncated string length", key, i, n)
		}
		if l > uint64(r.left()) {
			return Value{}, formatErr(r.off-8, "key %q: element %d of %d: string length %d exceeds the %d bytes left",
				key, i, n, l, r.left())
		}
		r.off += int(l)
	}
	block := string(r.data[first:r.off])
	v.strs = make([]string, n)
	pos := 0
	for i := range v.strs {
		l := int(binary.LittleEndian.Uint64(r.data[first+pos:]))
		v.strs[i] = block[pos+8 : pos+8+l]
		pos += 8 + l
	}
	return v, nil
}

func (f *File) setAlignment() error {
	v, ok := f.Lookup(keyAlignment)
	if !ok {
		return nil
	}
	if !v.Type().isUnsigned() {
		return fmt.Errorf("gguf: key %q has type %s, want an unsigned integer: %w", keyAlignment, v.Type(), ErrFormat)
	}
	a, _ := v.AsUint()
	if a == 0 || a&(a-1) != 0 {
		return fmt.Errorf("gguf: key %q: alignment %d is not a nonzero power of two: %w", keyAlignment, a, ErrFormat)
	}
	if a > maxAlignment {
		return fmt.Errorf("gguf: key %q: alignment %d exceeds %d: %w", keyAlignment, a, maxAlignment, ErrFormat)
	}
	f.Alignment = int(a)
	return nil
}

func (f *File) readTensorInfo(r *reader, i int) error {
	nameOff := r.off
	nameBytes, err := r.str(func() string { return fmt.Sprintf("tensor %d name", i) })
	if err != nil {
		return err
	}
	name := string(nameBytes)
	if j, dup := f.tensorIndex[name]; dup {
		return formatErr(nameOff, "duplicate tensor name %q (tensors %d and %d)", name, j, i)
	}
	off := r.off
	nDims, ok := r.u32()
	if !ok {
		return formatErr(off, "tensor %q: truncated n_dims", name)
	}
	if nDims < 1 || nDims > maxDims {
		return formatErr(off, "tensor %q: n_dims is %d, want 1 to %d", name, nDims, maxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]int64, nDims)}
	elements := int64(1)
	for d := range t.Dims {
		off = r.off
		ne, ok := r.u64()
		if !ok {
			return formatErr(off, "tensor %q: truncated dimension %d", name, d)
		}
		if ne == 0 || ne > maxInt64 {
			return formatErr(off, "tensor %q: dimension %d is %d, want 1 to 2^63-1", name, d, ne)
		}
		t.Dims[d] = int64(ne)
		if elements > maxInt64/int64(ne) {
			return formatErr(off, "tensor %q: shape %v has more than 2^63-1 elements", name, t.Dims[:d+1])
		}
		elements *= int64(ne)
	}
	off = r.off
	typ, ok := r.u32()
	if !ok {
		return formatErr(off, "tensor %q: truncated type", name)
	}
	t.Type = Type(typ)
	if !t.Type.Known() {
		return formatErr(off, "tensor %q: unknown tensor type %d", name, typ)
	}
	if bs := int64(t.Type.BlockSize()); t.Dims[0]%bs != 0 {
		return formatErr(off, "tensor %q: row length %d is not a multiple of the %s block size %d", name, t.Dims[0], t.Type, bs)
	}
	if _, ok := t.Type.RowBytes(elements); !ok {
		return formatErr(off, "tensor %q: %d elements of %s overflow an int64 byte size", name, elements, t.Type)
	}
	off = r.off
	offset, ok := r.u64()
	if !ok {
		return formatErr(off, "tensor %q: truncated offset", name)
	}
	if offset > maxInt64 {
		return formatErr(off, "tensor %q: offset %d is past any file", name, offset)
	}
	t.Offset = int64(offset)
	if t.Offset%int64(f.Alignment) != 0 {
		return formatErr(off, "tensor %q: offset %d is not a multiple of the alignment %d", name, t.Offset, f.Alignment)
	}
	f.tensorIndex[name] = len(f.Tensors)
	f.Tensors = append(f.Tensors, t)
	return nil
}

// placeTensors sets DataOffset from the end of the tensor infos, checks that
// every tensor lies inside the file of size bytes and that none overlap,
// and points Data into data (the whole file) unless data is nil.
func (f *File) placeTensors(data []byte, end int, size int64) error {
	a := f.Alignment
	start := int64((end + a - 1) / a * a)
	if start > size {
		if len(f.Tensors) > 0 {
			return formatErr(end, "data section starts at byte %d (alignment %d), past the end of the %d-byte file",
				start, a, size)
		}
		// llama.cpp writes vocabulary-only files without the final
		// padding and reads them; there is no data to place.
		start = size
	}
	f.DataOffset = start
	dataLen := size - start
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset > dataLen || t.Size() > dataLen-t.Offset {
			return fmt.Errorf("gguf: tensor %q: data [%d, +%d) lies past the end of the %d-byte data section: %w",
				t.Name, t.Offset, t.Size(), dataLen, ErrFormat)
		}
		if data != nil {
			lo := int(start + t.Offset)
			hi := lo + int(t.Size())
			t.Data = data[lo:hi:hi]
		}
	}
	// Sort a copy by offset so any order of tensor infos is accepted;
	// overlap is then a check of neighbours.
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		ox, oy := f.Tensors[x].Offset, f.Tensors[y].Offset
		switch {
		case ox < oy:
			return -1
		case ox > oy:
			return 1
		}
		return 0
	})
	for k := 1; k < len(order); k++ {
		p, q := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size() > q.Offset {
			return fmt.Errorf("gguf: tensors %q [%d, %d) and %q [%d, %d) overlap: %w",
				p.Name, p.Offset, p.Offset+p.Size(), q.Name, q.Offset, q.Offset+q.Size(), ErrFormat)
		}
	}
	return nil
}

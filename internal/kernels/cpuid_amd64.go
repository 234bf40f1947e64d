//go:build amd64 && !purego

package kernels

import "encoding/binary"

// identifyCPU reads the vendor string (leaf 0) and the family and model
// (leaf 1) with CPUID.
func identifyCPU() (vendor string, family, model int) {
	_, b, c, d := cpuid(0, 0)
	var v [12]byte
	binary.LittleEndian.PutUint32(v[0:], b)
	binary.LittleEndian.PutUint32(v[4:], d)
	binary.LittleEndian.PutUint32(v[8:], c)
	a, _, _, _ := cpuid(1, 0)
	family, model = decodeFamilyModel(a)
	return string(v[:]), family, model
}

// cpuid executes CPUID with EAX = leaf and ECX = sub (f32_amd64.s).
//
//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

package kernels

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUInfo names the processor a figure was measured on: the kernels'
// speed differs between microarchitectures that share a feature set (Zen 4
// runs 512-bit instructions in two halves, Zen 5 and Intel's server cores
// in one), so a benchmark's report carries it (`llama2 bench`'s cpu_info).
type CPUInfo struct {
	// Name is the processor's model name ("AMD EPYC"); empty when the
	// system does not say.
	Name string
	// Family and Model are the x86 family and model numbers as Linux
	// reports them (Zen 4: family 25; Zen 5: family 26); -1 when unknown.
	Family, Model int
}

// String is the name, family and model, the kernels this build runs and
// the per-CPU table's row in use (tuning.go): "AMD EPYC, family 25 model
// 17 (avx512 vnni vbmi; table zen4)".
func (c CPUInfo) String() string {
	name := cmp.Or(c.Name, "unknown CPU")
	if c.Family >= 0 && c.Model >= 0 {
		name += fmt.Sprintf(", family %d model %d", c.Family, c.Model)
	}
	return name + " (" + Features() + "; table " + tuning.Name + ")"
}

// Features lists the instruction sets the kernels use on this CPU in this
// build: "avx512 vnni vbmi", "avx2", "neon dotprod", or "go" for the pure-Go
// twins (other architectures, -tags purego, or an x86 without AVX2 and FMA).
func Features() string {
	var f []string
	if asmKernels {
		switch {
		case hasAVX512:
			f = append(f, "avx512")
			if hasVNNI {
				f = append(f, "vnni")
			}
			if hasVBMI {
				f = append(f, "vbmi")
			}
		case hasAVX2FMA:
			f = append(f, "avx2")
		case hasNEON:
			f = append(f, "neon")
			if hasASIMDDP {
				f = append(f, "dotprod")
			}
		}
	}
	if len(f) == 0 {
		return "go"
	}
	return strings.Join(f, " ")
}

// DetectCPU reads the processor's name, family and model from
// /proc/cpuinfo (Linux); elsewhere, or if it cannot be read, it returns an
// unknown CPU.
func DetectCPU() CPUInfo {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return CPUInfo{Family: -1, Model: -1}
	}
	return parseCPUInfo(string(b))
}

// parseCPUInfo reads the first processor's "model name", "cpu family" and
// "model" lines from the text of /proc/cpuinfo; a missing or malformed
// field stays unknown.
func parseCPUInfo(text string) CPUInfo {
	c := CPUInfo{Family: -1, Model: -1}
	for line := range strings.Lines(text) {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			if strings.TrimSpace(line) == "" && c.Name != "" {
				break // the end of the first processor's block
			}
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "model name":
			c.Name = strings.Join(strings.Fields(value), " ")
		case "cpu family", "model":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				continue
			}
			if key == "model" {
				c.Model = n
			} else {
				c.Family = n
			}
		}
	}
	return c
}

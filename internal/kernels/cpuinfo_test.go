package kernels

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const zen4CPUInfo = `processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
model name	: AMD   EPYC
stepping	: 1

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 26
model		: 2
model name	: Other
`

func TestParseCPUInfo(t *testing.T) {
	c := parseCPUInfo(zen4CPUInfo)
	require.Equal(t, CPUInfo{Name: "AMD EPYC", Family: 25, Model: 17}, c)
	require.True(t, strings.HasPrefix(c.String(), "AMD EPYC, family 25 model 17 ("), c.String())
	// arm64's /proc/cpuinfo has neither a model name nor a family.
	arm := parseCPUInfo("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n")
	require.Equal(t, CPUInfo{Family: -1, Model: -1}, arm)
	require.True(t, strings.HasPrefix(arm.String(), "unknown CPU ("), arm.String())
	require.Equal(t, CPUInfo{Name: "X", Family: -1, Model: -1}, parseCPUInfo("model name: X\ncpu family: -3\nmodel: 1e9\n"))
}

func TestFeatures(t *testing.T) {
	f := Features()
	switch {
	case !asmKernels:
		require.Equal(t, "go", f)
	case hasVNNI:
		require.Contains(t, f, "avx512 vnni")
	case hasAVX2FMA && !hasAVX512:
		require.Equal(t, "avx2", f)
	case hasNEON:
		require.True(t, strings.HasPrefix(f, "neon"), f)
	}
	require.NotEmpty(t, DetectCPU().String())
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add(zen4CPUInfo)
	f.Add("model name:\ncpu family: 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := parseCPUInfo(text)
		require.GreaterOrEqual(t, c.Family, -1)
		require.GreaterOrEqual(t, c.Model, -1)
		_ = c.String()
	})
}

package kernels

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeFamilyModel(t *testing.T) {
	for _, c := range []struct {
		eax           uint32
		family, model int
	}{
		{0x00a10f11, 25, 17},  // AMD EPYC Zen 4 (Genoa)
		{0x00b00f21, 26, 2},   // AMD Zen 5 (Turin)
		{0x000806f8, 6, 143},  // Intel Sapphire Rapids
		{0x00050657, 6, 85},   // Intel Cascade Lake
		{0x00000f29, 15, 2},   // Pentium 4: extended family 0
		{0x00000543, 5, 4},    // Pentium MMX: no extended model below family 6
		{0x0ff00f00, 270, 0},  // the largest extended family
		{0x000f0fff, 15, 255}, // every model bit
	} {
		f, m := decodeFamilyModel(c.eax)
		require.Equal(t, [2]int{c.family, c.model}, [2]int{f, m}, "%#x", c.eax)
	}
}

// TestIdentifyCPU: where both can be read, CPUID and Linux agree on the
// family and model.
func TestIdentifyCPU(t *testing.T) {
	info := DetectCPU()
	if cpuVendor == "" || runtime.GOOS != "linux" || info.Family < 0 {
		t.Skip("CPUID or /proc/cpuinfo is not read in this build")
	}
	require.Equal(t, info.Family, cpuFamily)
	require.Equal(t, info.Model, cpuModel)
	require.Contains(t, []string{"AuthenticAMD", "GenuineIntel", "HygonGenuine"}, cpuVendor)
}

func TestChooseTuning(t *testing.T) {
	row := func(name, vendor string, family, model int) string {
		tu, err := chooseTuning(name, vendor, family, model)
		require.NoError(t, err)
		return tu.Name
	}
	require.Equal(t, "zen4", row("", "AuthenticAMD", 25, 17))
	require.Equal(t, "zen5", row("", "AuthenticAMD", 26, 2))
	require.Equal(t, "default", row("", "GenuineIntel", 6, 143))
	require.Equal(t, "default", row("", "", 0, 0))
	require.Equal(t, "zen5", row("zen5", "AuthenticAMD", 25, 17), "the variable overrides the CPU")
	tu, err := chooseTuning("zen9", "AuthenticAMD", 25, 17)
	require.ErrorContains(t, err, `LLAMA2_CPU_TABLE="zen9"`)
	require.ErrorContains(t, err, "zen4, zen5, default")
	require.Equal(t, "zen4", tu.Name, "the CPU's row stays in use")
	for _, r := range tunings {
		require.GreaterOrEqual(t, r.Q8_0Panels.Prefetch, 0, r.Name)
		require.GreaterOrEqual(t, r.Q4_0Panels.Prefetch, 0, r.Name)
		require.GreaterOrEqual(t, r.KPanels.Prefetch, 0, r.Name)
		requireGenerated(t, r.Tuning)
	}
	require.Equal(t, "default", tunings[len(tunings)-1].Name, "the last row matches every CPU")
}

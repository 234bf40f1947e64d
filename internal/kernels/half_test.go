package kernels

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestF16RoundTrip checks every one of the 65536 half values: widening is
// exact, so narrowing it again gives the same bits (NaNs stay NaNs).
func TestF16RoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToF32(uint16(h))
		back := F32ToF16(f)
		if math.IsNaN(float64(f)) {
			require.True(t, back&0x7c00 == 0x7c00 && back&0x3ff != 0, "NaN %#04x -> %#04x", h, back)
			continue
		}
		require.Equal(t, uint16(h), back, "half %#04x -> %g", h, f)
	}
}

// TestF16Values pins a few conversions to their definitions.
func TestF16Values(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 1.0 / (1 << 24)},
		{0x0400, 1.0 / (1 << 14)}, {0x3555, 0.333251953125}, {0x8000, float32(math.Copysign(0, -1))},
	} {
		require.Equal(t, c.f, F16ToF32(c.h), "%#04x", c.h)
		require.Equal(t, c.h, F32ToF16(c.f), "%g", c.f)
	}
	// Ties to even, and overflow to infinity.
	require.Equal(t, uint16(0x3c00), F32ToF16(1+1.0/2048))
	require.Equal(t, uint16(0x3c02), F32ToF16(1+3.0/2048))
	require.Equal(t, uint16(0x7c00), F32ToF16(65520))
	require.True(t, math.IsInf(float64(F16ToF32(0xfc00)), -1))
}

func TestBF16(t *testing.T) {
	for h := range 1 << 16 {
		f := BF16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		require.Equal(t, uint16(h), F32ToBF16(f))
	}
	require.Equal(t, float32(1), BF16ToF32(0x3f80))
	require.Equal(t, uint16(0x3f80), F32ToBF16(1+1.0/512))  // tie, even stays
	require.Equal(t, uint16(0x3f82), F32ToBF16(1+3.0/256))  // tie, odd rounds up
	require.Equal(t, uint16(0x3f81), F32ToBF16(1+1.01/128)) // above the tie
}

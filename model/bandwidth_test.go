package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBandwidthProbe(t *testing.T) {
	_, err := NewBandwidthProbe(8*bandwidthGrain - 1)
	require.ErrorContains(t, err, "below the minimum")

	p, err := NewBandwidthProbe(8 << 20)
	require.NoError(t, err)
	for _, threads := range []int{1, 2} {
		bw := p.Measure(threads, 2)
		require.Greater(t, bw, 0.0, "%d threads", threads)
		require.False(t, math.IsInf(bw, 0), "%d threads", threads)
	}
	require.Zero(t, p.Measure(1, 0))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.Zero(t, p.Measure(1, 1), "after Close")
	require.Zero(t, MeasureBandwidth(1024, 1, 1), "too small a buffer")
	require.Greater(t, MeasureBandwidth(8<<20, 1, 1), 0.0)
}

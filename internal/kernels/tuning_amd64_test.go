//go:build amd64 && !purego

package kernels

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// requireGenerated: the row's distances are ones the kernels were
// generated for.
func requireGenerated(t *testing.T, row Tuning) {
	t.Helper()
	require.Contains(t, f32ByPrefetch, row.F32Prefetch, row.Name)
	require.Contains(t, q8ByPrefetch, row.Q8Prefetch, row.Name)
}

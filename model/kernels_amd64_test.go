//go:build amd64 && !purego

package model

import "testing"

// TestMatMatTiles runs both AVX-512 tile drivers on every shape of
// TestMatMat, whichever of them matMatAVX512 would pick for the row length.
func TestMatMatTiles(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	t.Run("4x4", func(t *testing.T) {
		testMatMat(t, func(out, w, x []float32, batch int) { matMatTiled(out, w, x, batch, true) })
	})
	t.Run("8x3", func(t *testing.T) { testMatMat(t, matMatTiled8) })
}

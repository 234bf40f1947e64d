package model

import "math"

// ropeTable is a model's rotary position embedding: the frequency of each
// pair of a head, computed once when the model is read, and which values
// form the pairs. Every path (one token, batched prompts, batched decoding)
// takes its angles and rotations from here.
type ropeTable struct {
	style ropeStyle
	freq  []float32 // (head_size/2) the angle of pair j is pos * freq[j]
}

// newRopeTable computes the frequencies of c's heads. Without factors or
// scaling they are run.c's, bit for bit: 1 / powf(theta, 2j/head_size),
// the exponent in float32, so llama2.c's goldens stay exact. factors (nil,
// or head_size/2 of them: Llama 3.1's rope_freqs) divide frequency j, as
// llama.cpp divides the angle; linear scaling divides them all.
func newRopeTable(c Config, style ropeStyle, factors []float32) ropeTable {
	hs := c.HeadSize()
	theta, scale := float64(c.ropeTheta()), c.ropeScale()
	freq := make([]float32, hs/2)
	for j := range freq {
		freq[j] = 1 / float32(math.Pow(theta, float64(float32(2*j)/float32(hs))))
		if factors != nil {
			freq[j] /= factors[j]
		}
		if scale != 1 {
			freq[j] /= scale // linear scaling: the angle of pos/scale
		}
	}
	return ropeTable{style: style, freq: freq}
}

// angles sets cos[j] and sin[j] to those of pair j's angle at position pos.
func (r *ropeTable) angles(cos, sin []float32, pos int) {
	for j, f := range r.freq {
		val := float32(pos) * f
		cos[j] = float32(math.Cos(float64(val)))
		sin[j] = float32(math.Sin(float64(val)))
	}
}

// rotate turns each pair of every head of vec (heads of hs values) by its
// angle, whose cos and sin are cos[j] and sin[j] for pair j of a head.
func (r *ropeTable) rotate(vec, cos, sin []float32, hs int) {
	if r.style == ropeNeox {
		rotateNeox(vec, cos, sin, hs)
		return
	}
	rotateAdjacent(vec, cos, sin, hs)
}

// rotateAdjacent turns each pair (vec[i], vec[i+1]), i even, by the angle
// of pair j = (i%hs)/2 (run.c's RoPE).
func rotateAdjacent(vec, cos, sin []float32, hs int) {
	for i := 0; i < len(vec); i += 2 {
		j := (i % hs) / 2
		fcr, fci := cos[j], sin[j]
		v0, v1 := vec[i], vec[i+1]
		vec[i] = v0*fcr - v1*fci
		vec[i+1] = v0*fci + v1*fcr
	}
}

// rotateNeox turns each pair (head[j], head[j+hs/2]) of every head by the
// angle of pair j.
func rotateNeox(vec, cos, sin []float32, hs int) {
	half := hs / 2
	cos, sin = cos[:half], sin[:half]
	for h := 0; h+hs <= len(vec); h += hs {
		lo, hi := vec[h:h+half], vec[h+half:h+hs]
		for j := range lo {
			v0, v1 := lo[j], hi[j]
			lo[j] = v0*cos[j] - v1*sin[j]
			hi[j] = v0*sin[j] + v1*cos[j]
		}
	}
}

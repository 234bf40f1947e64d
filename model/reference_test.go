package model

import "math"

// referenceForward is llama2.c's run.c forward pass written as plainly as
// possible, in run.c's order of operations, with no kernel, pool or batch.
// Every faster path is compared with it.
type referenceForward struct {
	c          Config
	w          *weights
	keyCache   [][]float32 // [layer][pos*kv_dim + i]
	valueCache [][]float32
}

func newReferenceForward(m *Model) *referenceForward {
	r := &referenceForward{c: m.Config, w: &m.w}
	for range m.Config.Layers {
		r.keyCache = append(r.keyCache, make([]float32, m.Config.SeqLen*m.Config.KVDim()))
		r.valueCache = append(r.valueCache, make([]float32, m.Config.SeqLen*m.Config.KVDim()))
	}
	return r
}

func refMatmul(xout, x, w []float32, n, d int) {
	for i := 0; i < d; i++ {
		var val float32
		for j := 0; j < n; j++ {
			val += w[i*n+j] * x[j]
		}
		xout[i] = val
	}
}

func refRMSNorm(o, x, weight []float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss /= float32(len(x))
	ss += 1e-5
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for j := range o {
		o[j] = weight[j] * (ss * x[j])
	}
}

func refSoftmax(x []float32) {
	maxVal := x[0]
	for _, v := range x {
		maxVal = max(maxVal, v)
	}
	var sum float32
	for i := range x {
		x[i] = float32(math.Exp(float64(x[i] - maxVal)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

func (r *referenceForward) forward(token, pos int) []float32 {
	c, w := r.c, r.w
	dim, hidden, hs := c.Dim, c.HiddenDim, c.HeadSize()
	kvDim, kvMul := c.KVDim(), c.Heads/c.KVHeads
	x := make([]float32, dim)
	xb := make([]float32, dim)
	xb2 := make([]float32, dim)
	hb := make([]float32, hidden)
	hb2 := make([]float32, hidden)
	q := make([]float32, dim)
	copy(x, w.tokenEmbedding.f[token*dim:(token+1)*dim])
	for l := 0; l < c.Layers; l++ {
		lw := w.layers[l]
		refRMSNorm(xb, x, lw.rmsAtt)
		k := r.keyCache[l][pos*kvDim : (pos+1)*kvDim]
		v := r.valueCache[l][pos*kvDim : (pos+1)*kvDim]
		refMatmul(q, xb, lw.wq.f, dim, dim)
		refMatmul(k, xb, lw.wk.f, dim, kvDim)
		refMatmul(v, xb, lw.wv.f, dim, kvDim)
		for i := 0; i < dim; i += 2 {
			headDim := i % hs
			freq := 1 / float32(math.Pow(10000, float64(float32(headDim)/float32(hs))))
			val := float32(pos) * freq
			fcr := float32(math.Cos(float64(val)))
			fci := float32(math.Sin(float64(val)))
			rotn := 1
			if i < kvDim {
				rotn = 2
			}
			for vi := 0; vi < rotn; vi++ {
				vec := q
				if vi == 1 {
					vec = k
				}
				v0, v1 := vec[i], vec[i+1]
				vec[i] = v0*fcr - v1*fci
				vec[i+1] = v0*fci + v1*fcr
			}
		}
		for h := 0; h < c.Heads; h++ {
			qh := q[h*hs : (h+1)*hs]
			att := make([]float32, pos+1)
			for t := 0; t <= pos; t++ {
				kt := r.keyCache[l][t*kvDim+(h/kvMul)*hs:]
				var score float32
				for i := 0; i < hs; i++ {
					score += qh[i] * kt[i]
				}
				att[t] = score / float32(math.Sqrt(float64(hs)))
			}
			refSoftmax(att)
			out := xb[h*hs : (h+1)*hs]
			clear(out)
			for t := 0; t <= pos; t++ {
				vt := r.valueCache[l][t*kvDim+(h/kvMul)*hs:]
				for i := 0; i < hs; i++ {
					out[i] += att[t] * vt[i]
				}
			}
		}
		refMatmul(xb2, xb, lw.wo.f, dim, dim)
		for i := range x {
			x[i] += xb2[i]
		}
		refRMSNorm(xb, x, lw.rmsFFN)
		refMatmul(hb, xb, lw.w1.f, dim, hidden)
		refMatmul(hb2, xb, lw.w3.f, dim, hidden)
		for i := range hb {
			val := hb[i]
			val *= 1 / (1 + float32(math.Exp(float64(-val))))
			hb[i] = val * hb2[i]
		}
		refMatmul(xb, hb, lw.w2.f, hidden, dim)
		for i := range x {
			x[i] += xb[i]
		}
	}
	refRMSNorm(x, x, w.rmsFinal)
	logits := make([]float32, c.VocabSize)
	refMatmul(logits, x, w.classifier.f, dim, c.VocabSize)
	return logits
}

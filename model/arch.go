package model

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Architectures are data: what differs between the general.architecture
// values of GGUF files is one entry of architectures below, read by the
// loader (ggufmodel.go). The forward pass never asks which architecture
// it runs: it applies what the weights hold (a bias is added where a layer
// has one) and the RoPE table the loader made.
//
// Another architecture of the Llama family is an entry, plus a kernel for
// what the forward pass does not do yet. Qwen3, say, would be qwen2's
// entry without the biases and with two more required tensors per layer,
// attn_q_norm.weight and attn_k_norm.weight (head_size each), and a
// per-head RMS norm of the query and key before RoPE.

// archSpec is what the loader needs to know of an architecture.
type archSpec struct {
	// rope is the pairing RoPE rotates, as llama.cpp's
	// llama_model_rope_type says for the architecture.
	rope ropeStyle
	// tensors are the tensors the architecture reads: global ones by
	// name, a layer's with the name after "blk.N.". A file holding any
	// other tensor is refused, as llama.cpp refuses it: a tensor the
	// forward pass would ignore (an FFN bias, say) would give wrong
	// logits without a word.
	tensors []archTensor
	// epsKey is the metadata key of the RMS norms' epsilon, after the
	// "ARCH." prefix every hyperparameter has.
	epsKey string
}

// ropeStyle says which values of a head RoPE rotates together.
type ropeStyle uint8

const (
	// ropeAdjacent rotates pairs (2j, 2j+1) by frequency j: llama2.c's
	// RoPE, and llama.cpp's LLAMA_ROPE_TYPE_NORM (llama), whose
	// converter permutes the Q and K rows of Hugging Face checkpoints
	// into this order.
	ropeAdjacent ropeStyle = iota
	// ropeNeox rotates pairs (j, j+head_size/2) by frequency j:
	// LLAMA_ROPE_TYPE_NEOX (qwen2), the order of Hugging Face's
	// rotate_half.
	ropeNeox
)

func (r ropeStyle) String() string {
	if r == ropeNeox {
		return "NEOX pairs (i, i+d/2)"
	}
	return "adjacent pairs (2i, 2i+1)"
}

// archTensor is one tensor an architecture reads.
type archTensor struct {
	name     string // "token_embd.weight", or after "blk.N." for a layer's
	role     tensorRole
	required bool // else optional: absent means what role says
}

// tensorRole says which weight a tensor is, and so its shape and where
// the loader puts it.
type tensorRole uint8

const (
	roleEmbedding  tensorRole = iota // (vocab, dim)
	roleOutput                       // (vocab, dim); absent: the embedding (tied)
	roleOutputNorm                   // (dim)
	roleRopeFreqs                    // (head_size/2) frequency divisors (Llama 3.1); absent: all 1
	roleAttnNorm                     // (dim), per layer from here on
	roleWQ                           // (dim, dim)
	roleWK                           // (kv_dim, dim)
	roleWV                           // (kv_dim, dim)
	roleWO                           // (dim, dim)
	roleBQ                           // (dim)
	roleBK                           // (kv_dim)
	roleBV                           // (kv_dim)
	roleBO                           // (dim)
	roleFFNNorm                      // (dim)
	roleW1                           // (hidden, dim) gate
	roleW2                           // (dim, hidden) down
	roleW3                           // (hidden, dim) up
)

// perLayer reports whether tensors of role r are named "blk.N.name".
func (r tensorRole) perLayer() bool { return r >= roleAttnNorm }

// The tensors of the Llama family: what every architecture below reads,
// then what each adds.
var (
	familyGlobal = []archTensor{
		{"token_embd.weight", roleEmbedding, true},
		{"output_norm.weight", roleOutputNorm, true},
		{"output.weight", roleOutput, false},
	}
	familyLayer = []archTensor{
		{"attn_norm.weight", roleAttnNorm, true},
		{"attn_q.weight", roleWQ, true},
		{"attn_k.weight", roleWK, true},
		{"attn_v.weight", roleWV, true},
		{"attn_output.weight", roleWO, true},
		{"ffn_norm.weight", roleFFNNorm, true},
		{"ffn_gate.weight", roleW1, true},
		{"ffn_down.weight", roleW2, true},
		{"ffn_up.weight", roleW3, true},
	}
)

// family returns the family's tensors followed by extra.
func family(extra ...archTensor) []archTensor {
	return slices.Concat(familyGlobal, familyLayer, extra)
}

// architectures are the general.architecture values this package runs.
var architectures = map[string]*archSpec{
	// Llama 1, 2 and 3.x, TinyLlama, CodeLlama, Mistral 7B, SmolLM2, the
	// DeepSeek-R1 Llama distills. Llama 3.1 and later carry rope_freqs;
	// llama.cpp reads optional biases for this architecture too.
	"llama": {
		rope:   ropeAdjacent,
		epsKey: "attention.layer_norm_rms_epsilon",
		tensors: family(
			archTensor{"rope_freqs.weight", roleRopeFreqs, false},
			archTensor{"attn_q.bias", roleBQ, false},
			archTensor{"attn_k.bias", roleBK, false},
			archTensor{"attn_v.bias", roleBV, false},
			archTensor{"attn_output.bias", roleBO, false},
		),
	},
	// Qwen2 and Qwen2.5 (and the DeepSeek-R1 Qwen distills): biases on
	// the query, key and value projections, NEOX RoPE.
	"qwen2": {
		rope:   ropeNeox,
		epsKey: "attention.layer_norm_rms_epsilon",
		tensors: family(
			archTensor{"attn_q.bias", roleBQ, true},
			archTensor{"attn_k.bias", roleBK, true},
			archTensor{"attn_v.bias", roleBV, true},
		),
	},
}

// lookupArch returns the entry of general.architecture name, or an error
// naming it and the architectures this build runs.
func lookupArch(name string) (*archSpec, error) {
	if a, ok := architectures[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("general.architecture is %q, which is %w (this build runs %s)",
		name, ErrUnsupported, strings.Join(ArchitectureNames(), ", "))
}

// ArchitectureNames lists the GGUF architectures (general.architecture)
// this build runs, sorted.
func ArchitectureNames() []string {
	return slices.Sorted(maps.Keys(architectures))
}

// requiredPerLayer is the number of tensors every layer of a has.
func (a *archSpec) requiredPerLayer() int {
	n := 0
	for _, t := range a.tensors {
		if t.required && t.role.perLayer() {
			n++
		}
	}
	return n
}

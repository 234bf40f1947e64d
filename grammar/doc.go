// Package grammar constrains generation to a grammar: at each step only
// the tokens that keep the output a prefix of some sentence of the grammar
// may be sampled, so the output always parses.
//
// Grammars are written in llama.cpp's GBNF ([Parse]) or converted from a
// JSON schema ([FromJSONSchema], [JSONSchemaToGBNF]). They work over any
// vocabulary whose tokens' bytes are known ([Vocabulary], [NewTokens]).
//
// How it stays cheap. The regular parts of a grammar (a JSON string, a
// number, a key, a run of literals) compile to byte automata; rules that
// refer to themselves (objects in objects) are followed with stacks of
// frames. For each top frame (an automaton state), what every token does
// from there is computed once by a walk over the vocabulary's trie and
// kept with the grammar: accepted, rejected, or uncertain (it leaves the
// frame's rule with bytes left, e.g. `",` at the end of a string). At a
// step the matcher ORs the accepted sets of the current stacks and checks
// only the uncertain tokens against the whole stacks; the result is kept
// per state of the generation, so inside a long string the mask is a map
// lookup.
//
// A [Grammar] is immutable and shared; a [Matcher] follows one generation.
package grammar

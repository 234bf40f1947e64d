// Package jinja implements a Jinja template engine purpose-built for LLM
// chat templates.
//
// It is github.com/ardanlabs/jinja v1.14.0 (Copyright 2026, 2027 Ardan
// Labs, Apache License 2.0: see LICENSE), changed so that a render can be
// bounded. The library has no hook for limits, and a hostile template
// (chat templates ship inside downloaded model files) could otherwise end
// the process: a macro that calls itself overflows the goroutine stack,
// and an indent, repetition or doubling in a loop exhausts memory, both
// fatal errors that recover cannot catch; a loop of 10^10 turns never
// ends. The changes, all marked by e.lim or l. in the code:
//
//   - limits.go (new): Limits, ErrLimit, the per-render budget and the
//     checks below; template.go: RenderContext, and render takes the
//     budget; every nested evaluator (macros, caller, blocks, recursive
//     loops) shares it.
//   - eval.go: a step is counted for every node, expression and loop
//     iteration (the clock and the context are read every 4096 steps);
//     macro calls, caller() and recursive loop() calls count their
//     nesting; output goes through evaluator.write, which bounds each
//     output's length and charges it; filters (checkFilter), operators
//     (checkBinary), tests and the engine's functions weigh their
//     arguments (the elements printing or comparing them walks, so a value
//     built by sharing, such as [x, x] doubled in a loop, is refused
//     before it is walked) and refuse, before they allocate, what would
//     build more than is left (indent, tojson, replace, join, *, %, +,
//     ~, str.replace, str.format, iterating over a string); every value an
//     operator, filter or function returns is charged.
//   - value.go: Callable.macro marks a template's macros, whose arguments
//     are not weighed (they are walked only by what the macro does).
//   - eval.go, checkConcat: str + a dict, list, number, boolean or none
//     (and the reverse) is Python's TypeError, where upstream printed the
//     other operand: DeepSeek-R1's template, given tool call arguments as
//     an object, must fail as it does in transformers.
//
// Render and RenderValues keep upstream's behaviour: no limits.
package jinja

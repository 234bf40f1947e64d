package model

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Llama2ChatPrompt renders one user turn with the Llama 2 chat template. The
// system prompt, when not empty, goes into the first turn only.
func Llama2ChatPrompt(system, user string) string {
	if system != "" {
		return "[INST] <<SYS>>\n" + system + "\n<</SYS>>\n\n" + user + " [/INST]"
	}
	return "[INST] " + user + " [/INST]"
}

// ChatOptions configures [Session.Chat].
type ChatOptions struct {
	// System is the system prompt; when nil it is asked for on the input.
	System *string
	// User is the first user message; when nil it is asked for on the input.
	User *string
	// Steps is the number of positions to run; 0 or beyond the context
	// means the whole context.
	Steps int
}

// Chat runs run.c's interactive chat loop: it reads the user's lines from
// in, writes the prompts ("User: ", "Assistant: ") and the assistant's text
// to out, renders each user turn with [Llama2ChatPrompt], and ends after
// opts.Steps positions, at the end of the input, or when ctx is cancelled.
// As in run.c, the sampler draws at every position, prompt included, and EOS
// ends the assistant's turn.
func (s *Session) Chat(ctx context.Context, tok *Tokenizer, sampler *Sampler, opts ChatOptions, in io.Reader, out io.Writer) error {
	steps := opts.Steps
	if steps <= 0 || steps > s.cfg.SeqLen {
		steps = s.cfg.SeqLen
	}
	lines := bufio.NewReader(in)
	w := &errWriter{w: out}
	decoder := tok.NewTextDecoder()
	var buf []byte

	var prompt []int
	promptIdx := 0
	userTurn := true
	var token, next int
	for pos := 0; pos < steps; pos++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if userTurn {
			var system string
			if pos == 0 {
				if opts.System != nil {
					system = *opts.System
				} else if system, _, w.err = readLine(w, lines, "Enter system prompt (optional): "); w.err != nil {
					return w.err
				}
			}
			var user string
			if pos == 0 && opts.User != nil {
				user = *opts.User
			} else {
				var ok bool
				user, ok, w.err = readLine(w, lines, "User: ")
				if w.err != nil {
					return w.err
				}
				if !ok {
					break // end of input: run.c would repeat the last line forever
				}
			}
			prompt = tok.Encode(Llama2ChatPrompt(system, user), true, false)
			promptIdx = 0
			userTurn = false
			w.WriteString("Assistant: ")
		}
		if promptIdx < len(prompt) {
			token = prompt[promptIdx]
			promptIdx++
		} else {
			token = next
		}
		if token == EOS {
			userTurn = true
		}
		logits, err := s.Forward(token, pos)
		if err != nil {
			return err
		}
		next = sampler.Sample(logits)
		if promptIdx >= len(prompt) && next != EOS {
			buf = decoder.Append(buf[:0], token, next)
			w.Write(buf)
		}
		if next == EOS {
			buf = decoder.Flush(buf[:0])
			w.Write(buf)
			w.WriteString("\n")
		}
		if w.err != nil {
			return w.err
		}
	}
	buf = decoder.Flush(buf[:0])
	w.Write(buf)
	w.WriteString("\n")
	return w.err
}

// readLine writes guide, then reads one line without its line ending. ok is
// false at the end of the input when nothing was read.
func readLine(w *errWriter, r *bufio.Reader, guide string) (line string, ok bool, err error) {
	if _, err := w.WriteString(guide); err != nil {
		return "", false, err
	}
	line, err = r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("reading input: %w", err)
	}
	if err != nil && line == "" {
		return "", false, nil
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	return line, true, nil
}

// errWriter remembers the first write error so the loop checks it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil || len(p) == 0 {
		return 0, e.err
	}
	var n int
	n, e.err = e.w.Write(p)
	return n, e.err
}

func (e *errWriter) WriteString(s string) (int, error) {
	return e.Write([]byte(s))
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// chatOptions configures chatLoop.
type chatOptions struct {
	// System is the system prompt; when nil it is asked for on the input.
	System *string
	// User is the first user message; when nil it is asked for on the input.
	User *string
	// Steps is the number of positions to run; 0 or beyond the context
	// means the whole context.
	Steps int
	// Template, when set, renders the conversation (a GGUF model's chat
	// template, model.Model.Template); nil keeps run.c's Llama 2 rendering
	// of each turn (chat.Llama2Prompt), which llama2.c's goldens pin.
	Template *chat.Template
}

// chatLoop runs run.c's interactive chat loop on s: it reads the user's
// lines from in, writes the prompts ("User: ", "Assistant: ") and the
// assistant's text to out, renders each user turn with chat.Llama2Prompt or
// opts.Template,
// and ends after opts.Steps positions, at the end of the input, or when ctx
// is cancelled. As in run.c, the sampler draws at every position, prompt
// included, and EOS (the tokenizer's) ends the assistant's turn.
//
// With a template, each turn feeds only what the conversation's rendering
// adds to the rendering of the turns before it (as llama.cpp's chat does):
// the earlier turns stay in the KV cache. Special tokens in the template's
// output (<s>, </s>, ...) are parsed; in the user's text they are not.
func chatLoop(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, sampler *sample.Sampler, opts chatOptions, in io.Reader, out io.Writer) error {
	steps := opts.Steps
	var err error
	if seqLen := s.Model().Config.SeqLen; steps <= 0 || steps > seqLen {
		steps = seqLen
	}
	lines := bufio.NewReader(in)
	w := &errWriter{w: out}
	decoder := tok.NewTextDecoder()
	var buf []byte

	var prompt []int
	promptIdx := 0
	userTurn := true
	var token, next int
	eos := tok.EOS()
	turns := newChatTurns(opts.Template, tok)
	var reply []byte // the assistant's text of this turn, for the template
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
			if turns == nil {
				prompt = tok.Encode(chat.Llama2Prompt(system, user), true, false)
			} else if prompt, err = turns.user(system, user); err != nil {
				return err
			}
			promptIdx = 0
			reply = reply[:0]
			userTurn = false
			w.WriteString("Assistant: ")
		}
		if promptIdx < len(prompt) {
			token = prompt[promptIdx]
			promptIdx++
		} else {
			token = next
		}
		if token == eos {
			userTurn = true
		}
		logits, err := s.Forward(token, pos)
		if err != nil {
			return err
		}
		next = sampler.Sample(logits)
		if promptIdx >= len(prompt) && next != eos {
			buf = decoder.Append(buf[:0], token, next)
			w.Write(buf)
			reply = append(reply, buf...)
		}
		if next == eos && turns != nil {
			if err := turns.assistant(string(reply)); err != nil {
				return err
			}
		}
		if next == eos {
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

// chatTurns renders a conversation turn by turn with a chat template.
type chatTurns struct {
	tmpl     *chat.Template
	tok      *tokenizer.Tokenizer
	opts     chat.Options
	msgs     []chat.Message
	rendered string // the turns so far, rendered without a generation prompt
}

func newChatTurns(tmpl *chat.Template, tok *tokenizer.Tokenizer) *chatTurns {
	if tmpl == nil {
		return nil
	}
	return &chatTurns{tmpl: tmpl, tok: tok, opts: chat.Options{
		BOSToken: tok.Piece(tok.BOS()), EOSToken: tok.Piece(tok.EOS()),
	}}
}

// user adds a user turn (and, first, the system prompt if not empty) and
// returns the tokens of what it adds to the rendering, generation prompt
// included.
func (c *chatTurns) user(system, text string) ([]int, error) {
	if system != "" && len(c.msgs) == 0 {
		c.msgs = append(c.msgs, chat.Message{Role: "system", Content: c.tok.ProtectSpecial(system)})
	}
	c.msgs = append(c.msgs, chat.Message{Role: "user", Content: c.tok.ProtectSpecial(text)})
	opts := c.opts
	opts.AddGenerationPrompt = true
	full, err := c.tmpl.Render(c.msgs, opts)
	if err != nil {
		return nil, err
	}
	delta := full[commonPrefix(full, c.rendered):]
	// BOS starts the conversation unless the template writes it.
	bos := len(c.msgs) <= 2 && c.tok.AddBOS() && !strings.HasPrefix(delta, c.opts.BOSToken)
	return c.tok.EncodeRendered(delta, bos), nil
}

// assistant records the assistant's reply, which is already in the cache.
func (c *chatTurns) assistant(text string) error {
	c.msgs = append(c.msgs, chat.Message{Role: "assistant", Content: c.tok.ProtectSpecial(text)})
	r, err := c.tmpl.Render(c.msgs, c.opts)
	c.rendered = r
	return err
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
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

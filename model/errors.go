package model

import (
	"errors"
	"fmt"
	"sync"
)

// Errors a caller may want to tell apart, with [errors.Is]. The errors
// returned wrap them with the details (lengths, positions, file names).
var (
	// ErrPromptTooLong: the prompt has more tokens than the model's
	// context (or than the room left in it when continuing a sequence).
	ErrPromptTooLong = errors.New("the prompt is longer than the context")
	// ErrEmptyPrompt: a generation needs at least one prompt token (BOS).
	ErrEmptyPrompt = errors.New("the prompt has no tokens")
	// ErrContextFull: a position past the end of the context was asked for.
	ErrContextFull = errors.New("the context is full")
	// ErrClosed: the model or the session was closed.
	ErrClosed = errors.New("closed")
	// ErrBusy: the session (or the batch) is in use: by a call from
	// another goroutine, or by a sequence still running on it.
	ErrBusy = errors.New("in use")
	// ErrPositionGap: a position was fed before the one ahead of it; the
	// cache must hold positions 0..pos-1 (going back is allowed).
	ErrPositionGap = errors.New("positions must follow each other")
)

// asUnsupported makes err, when it wraps errors.ErrUnsupported (package
// tokenizer's unsupported tokenizer models), match ErrUnsupported too,
// keeping its message.
func asUnsupported(err error) error {
	if errors.Is(err, errors.ErrUnsupported) {
		return unsupported{err}
	}
	return err
}

type unsupported struct{ err error }

func (u unsupported) Error() string        { return u.err.Error() }
func (u unsupported) Unwrap() error        { return u.err }
func (u unsupported) Is(target error) bool { return target == ErrUnsupported }

func errPromptTooLong(n, seqLen int) error {
	return fmt.Errorf("%w: %d tokens, more than the model's context of %d", ErrPromptTooLong, n, seqLen)
}

// mapping is a model file's memory mapping, shared by the models made from
// it ([Model.Quantize] shares the norms) and the sessions running on them:
// it is unmapped when the last of them is closed.
type mapping struct {
	mu    sync.Mutex
	refs  int
	unmap func() error
}

// acquire takes a reference; it fails once the mapping is gone.
func (mp *mapping) acquire() error {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if mp.refs <= 0 {
		return ErrClosed
	}
	mp.refs++
	return nil
}

// release drops a reference and unmaps the file with the last one.
func (mp *mapping) release() error {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	mp.refs--
	if mp.refs == 0 && mp.unmap != nil {
		return mp.unmap()
	}
	return nil
}

// mapRefs returns the model's shared mapping, made from its unmap function
// (the model's own reference) the first time.
func (m *Model) mapRefs() *mapping {
	m.refOnce.Do(func() {
		if m.shared == nil {
			m.shared = &mapping{refs: 1, unmap: m.unmap}
		}
	})
	return m.shared
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/llama2-go/llama2/model"
)

const quantizeUsage = `Usage: llama2 quantize <in.bin> <out.bin> [-g <int>]
Converts an fp32 checkpoint (legacy v0 or version 1) to llama2.c's version 2
(Q8_0) format, byte for byte what llama2.c's export.py --version 2 writes.
Options:
  -g <int>  group size: consecutive weights sharing one scale; default
            export.py's choice, 64 halved until it divides dim
`

func runQuantize(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llama2 quantize", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	groupSize := fs.Int("g", 0, "")
	var paths []string
	// Accept the flag before, between or after the two paths.
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, quantizeUsage)
				return 0
			}
			fmt.Fprintf(stderr, "error: %v\n\n%s", err, quantizeUsage)
			return 1
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(paths) != 2 {
		fmt.Fprintf(stderr, "error: want an input and an output checkpoint, got %d paths\n\n%s", len(paths), quantizeUsage)
		return 1
	}
	if err := quantize(paths[0], paths[1], *groupSize, stderr); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func quantize(in, out string, groupSize int, stderr io.Writer) error {
	m, err := model.Open(in)
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.Config
	if groupSize == 0 {
		groupSize = model.DefaultGroupSize(c)
	}
	if c.HiddenDim%groupSize != 0 && c.GroupSize == 0 {
		fmt.Fprintf(stderr, "note: group size %d does not divide hidden_dim %d, so groups of w2 straddle rows: "+
			"llama2.c's runq.c computes such files wrongly (this program computes them correctly). "+
			"-g %d makes groups lie inside rows.\n",
			groupSize, c.HiddenDim, model.RowAlignedGroupSize(c))
	}
	if abs, err := filepath.Abs(out); err == nil {
		if absIn, err := filepath.Abs(in); err == nil && abs == absIn {
			return fmt.Errorf("output %s would overwrite the input", out)
		}
	}
	// Write beside the destination, then rename: a failed run never leaves
	// a truncated checkpoint under the final name.
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	large := c.Params() > 50_000_000
	lastPct := -1
	err = model.WriteQ8(tmp, m, groupSize, func(done, total int64) {
		if pct := int(100 * done / total); large && pct/10 != lastPct/10 {
			fmt.Fprintf(stderr, "quantize: %d%%\n", pct)
			lastPct = pct
		}
	})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "quantize: wrote %s (Q8_0, group size %d)\n", out, groupSize)
	return nil
}

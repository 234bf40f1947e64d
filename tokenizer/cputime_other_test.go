//go:build !unix

package tokenizer

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }

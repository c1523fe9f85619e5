//go:build !unix

package procs

import "time"

// cpuTime is not read here: Run leaves the runtime's default alone.
func cpuTime() (time.Duration, bool) { return 0, false }

package heraldtest

import (
	"syscall"
	"time"
)

// CPUTime is the process's CPU time so far, user and system. Benchmarks
// report CPU per operation from it: on a shared host, where other work
// takes the cores, it varies far less than the wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

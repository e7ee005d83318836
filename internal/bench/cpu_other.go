//go:build !linux

package bench

import (
	"errors"
	"time"
)

// onCPU needs sched_setaffinity(2); elsewhere the raw sign rate can only be
// measured unpinned (no ServerCPUs).
func onCPU(int, func()) error {
	return errors.New("binding to a CPU (--server-cpus) is supported on Linux only")
}

// settle needs /proc/stat; elsewhere the raw measurement starts at once.
func settle([]int, time.Duration) time.Duration { return 0 }

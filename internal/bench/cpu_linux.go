package bench

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// onCPU runs f on an OS thread bound to cpu. The thread is not handed back
// to the scheduler afterwards (no UnlockOSThread): it ends with the
// goroutine, so no other goroutine inherits its affinity. If cpu cannot be
// used, f is not run.
func onCPU(cpu int, f func()) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	if cpu >= 0 {
		set.Set(cpu) // a number past the set's size leaves it empty
	}
	if set.Count() == 0 {
		return fmt.Errorf("CPU %d does not exist", cpu)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("binding the raw sign measurement to CPU %d: %w", cpu, err)
	}
	f()
	return nil
}

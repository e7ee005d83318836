package bench

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestOnCPUBindsTheThread: the raw sign loop really runs bound to the CPU
// asked for, and a CPU that does not exist is an error, not a silent
// unpinned run.
func TestOnCPUBindsTheThread(t *testing.T) {
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		t.Fatal(err)
	}
	for cpu := range 64 {
		if !mine.IsSet(cpu) {
			continue
		}
		var got unix.CPUSet
		ran := false
		done := make(chan error, 1)
		go func() {
			done <- onCPU(cpu, func() {
				ran = true
				if err := unix.SchedGetaffinity(0, &got); err != nil {
					t.Error(err)
				}
			})
		}()
		if err := <-done; err != nil || !ran {
			t.Fatalf("CPU %d: err %v, ran %v", cpu, err, ran)
		}
		if got.Count() != 1 || !got.IsSet(cpu) {
			t.Fatalf("CPU %d: the thread's affinity has %d CPUs (CPU %d set: %v)", cpu, got.Count(), cpu, got.IsSet(cpu))
		}
	}
	for _, bad := range []int{-1, 1 << 20} {
		done := make(chan error, 1)
		ran := false
		go func() { done <- onCPU(bad, func() { ran = true }) }()
		if err := <-done; err == nil || ran {
			t.Fatalf("CPU %d: err %v, ran %v; want an error and no run", bad, err, ran)
		}
	}
}

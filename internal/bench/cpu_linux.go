package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

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

// settle waits until the CPUs have been nearly idle (under settleBusy of
// each 200 ms window, per CPU) or until limit has passed, whichever comes
// first, and returns how long it waited. It runs before each raw sign
// measurement: when the load stops, the server still has work queued (the
// last WAL checkpoint and its fsyncs, the audit flush, a collection), and a
// raw measurement that shares the core with it reads low — which would
// flatter the ratio.
func settle(cpus []int, limit time.Duration) time.Duration {
	if len(cpus) == 0 {
		return 0
	}
	start := time.Now()
	prev, err := readCPUTimes(cpus)
	if err != nil {
		return 0
	}
	for time.Since(start) < limit {
		time.Sleep(settleWindow)
		cur, err := readCPUTimes(cpus)
		if err != nil {
			break
		}
		if quiet(prev, cur) {
			break
		}
		prev = cur
	}
	return time.Since(start)
}

const (
	settleWindow = 200 * time.Millisecond // /proc/stat counts in 10 ms ticks
	settleBusy   = 0.05
)

// cpuTimes are one CPU's busy and total jiffies from /proc/stat.
type cpuTimes struct{ busy, total uint64 }

func readCPUTimes(cpus []int) ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(b, cpus)
}

// parseCPUTimes reads the "cpuN" lines of a /proc/stat for cpus, in order.
// Busy is everything but idle and iowait; guest time is already counted in
// user and nice, so it is left out of the total.
func parseCPUTimes(stat []byte, cpus []int) ([]cpuTimes, error) {
	byCPU := map[int]cpuTimes{}
	for _, line := range strings.Split(string(stat), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var t cpuTimes
		for i, s := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat: %s: %w", f[0], err)
			}
			t.total += v
			if i != 3 && i != 4 {
				t.busy += v
			}
		}
		byCPU[n] = t
	}
	out := make([]cpuTimes, len(cpus))
	for i, c := range cpus {
		t, ok := byCPU[c]
		if !ok {
			return nil, fmt.Errorf("/proc/stat: no line for CPU %d", c)
		}
		out[i] = t
	}
	return out, nil
}

// quiet reports whether every CPU was busy under settleBusy between a and b.
// A window with no ticks at all says nothing and is not quiet.
func quiet(a, b []cpuTimes) bool {
	for i := range a {
		dt := b[i].total - a[i].total
		if dt == 0 || float64(b[i].busy-a[i].busy) > settleBusy*float64(dt) {
			return false
		}
	}
	return true
}

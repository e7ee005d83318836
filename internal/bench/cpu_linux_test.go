package bench

import (
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

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

// TestParseCPUTimes: busy is user+nice+system+irq+softirq+steal, idle and
// iowait are not; guest time (already in user) is not counted twice; CPUs
// come back in the order asked; a CPU without a line is an error.
func TestParseCPUTimes(t *testing.T) {
	stat, err := os.ReadFile("testdata/proc-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cpus    []int
		want    []cpuTimes
		wantErr bool
	}{
		{"cpu0", []int{0}, []cpuTimes{{busy: 1570056 + 3148 + 393606 + 28899 + 7, total: 1570056 + 3148 + 393606 + 1341247 + 14662 + 28899 + 7}}, false},
		{"both, reversed", []int{1, 0}, []cpuTimes{
			{busy: 853223 + 3313 + 397988 + 84551, total: 853223 + 3313 + 397988 + 2021222 + 9156 + 84551},
			{busy: 1570056 + 3148 + 393606 + 28899 + 7, total: 1570056 + 3148 + 393606 + 1341247 + 14662 + 28899 + 7},
		}, false},
		{"no such CPU", []int{2}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUTimes(stat, tt.cpus)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseCPUTimes([]byte("cpu0 1 2 x 4 5 6 7 8\n"), []int{0}); err == nil {
		t.Fatal("a field that is not a number parsed")
	}
}

func TestQuiet(t *testing.T) {
	a := []cpuTimes{{busy: 100, total: 1000}}
	for _, tt := range []struct {
		b    cpuTimes
		want bool
	}{
		{cpuTimes{busy: 100, total: 1020}, true},  // 0 of 20 ticks busy
		{cpuTimes{busy: 101, total: 1020}, true},  // 1 of 20: 5 %
		{cpuTimes{busy: 102, total: 1020}, false}, // 2 of 20
		{cpuTimes{busy: 100, total: 1000}, false}, // no ticks: unknown
	} {
		if got := quiet(a, []cpuTimes{tt.b}); got != tt.want {
			t.Errorf("quiet(%+v, %+v) = %v, want %v", a[0], tt.b, got, tt.want)
		}
	}
}

// TestSettleWaitsForABusyCPU: while a goroutine spins on a CPU, settle
// waits there until its limit (the spinning thread is bound to the CPU, so
// the CPU is never quiet). When it goes quiet is TestQuiet's to check: a
// test cannot promise an idle CPU while other packages' tests run.
func TestSettleWaitsForABusyCPU(t *testing.T) {
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for c := range 64 {
		if mine.IsSet(c) {
			cpu = c
		}
	}
	if cpu < 0 {
		t.Fatal("no CPU in this process's affinity mask")
	}
	var stop atomic.Bool
	spun := make(chan error, 1)
	go func() {
		spun <- onCPU(cpu, func() {
			for !stop.Load() { // spin: keep the CPU busy
			}
		})
	}()
	const limit = 1200 * time.Millisecond
	waited := settle([]int{cpu}, limit)
	stop.Store(true)
	if err := <-spun; err != nil {
		t.Fatal(err)
	}
	if waited < limit {
		t.Fatalf("settle returned after %v while CPU %d was busy; want the whole %v", waited, cpu, limit)
	}
	// No CPUs named (the server's are unknown): no wait at all.
	if waited := settle(nil, limit); waited != 0 {
		t.Fatalf("settle waited %v with no CPUs to watch", waited)
	}
}

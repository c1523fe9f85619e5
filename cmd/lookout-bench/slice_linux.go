package main

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// setSlice asks Linux's scheduler (EEVDF, since 6.6) for a slice of d
// for every thread of process pid (sched_setattr's sched_runtime, which
// for a normal task is the slice it requests, 0.1-100 ms; 0 gives back
// the kernel's default). A shorter slice gets a woken thread run sooner;
// a longer one lets it run longer before another is put in its place.
// Threads made later take their maker's. The threads' policy and nice
// value are kept.
func setSlice(pid int, d time.Duration) error {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // gone meanwhile
		}
		if err != nil {
			return err
		}
		attr.Size = unix.SizeofSchedAttr
		attr.Runtime = uint64(d)
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

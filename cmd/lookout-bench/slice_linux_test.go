package main

import (
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// setSlice sets the slice of another process's threads, keeping their
// policy and nice value, and 0 gives the kernel's default back.
func TestSetSlice(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	pid := child.Process.Pid
	// The kernel's default first: a slice the test's own process was
	// given would be the child's too.
	if err := setSlice(pid, 0); err != nil {
		t.Fatal(err)
	}
	before, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{3 * time.Millisecond, 100 * time.Microsecond} {
		if err := setSlice(pid, d); err != nil {
			t.Fatal(err)
		}
		a, err := unix.SchedGetAttr(pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		if a.Runtime != uint64(d) || a.Policy != before.Policy || a.Nice != before.Nice {
			t.Errorf("after setSlice(%s): runtime %d ns, policy %d, nice %d; want %d ns, policy and nice as before (%d, %d)",
				d, a.Runtime, a.Policy, a.Nice, d, before.Policy, before.Nice)
		}
	}
	if err := setSlice(pid, 0); err != nil {
		t.Fatal(err)
	}
	if a, _ := unix.SchedGetAttr(pid, 0); a.Runtime != before.Runtime {
		t.Errorf("after setSlice(0): runtime %d ns, want the default %d", a.Runtime, before.Runtime)
	}
}

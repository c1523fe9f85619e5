package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// yieldToServer lowers every thread of the process, and the threads made
// after it take the lowered priority. It runs in a child process (this
// test binary again), so that this one keeps its own.
func TestYieldToServer(t *testing.T) {
	if os.Getenv("LOOKOUT_BENCH_YIELD_CHILD") == "1" {
		if err := yieldToServer(7); err != nil {
			t.Fatal(err)
		}
		// More threads, made after: goroutines locked to threads of
		// their own while others block.
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				<-release
			}()
		}
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			stat, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
			if err != nil {
				continue // gone meanwhile
			}
			// The fields after the command's closing parenthesis;
			// nice is the 19th field of the line, the 17th of these.
			rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if nice, _ := strconv.Atoi(rest[16]); nice != 7 {
				t.Errorf("thread %s at nice %d", task.Name(), nice)
			}
		}
		close(release)
		wg.Wait()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestYieldToServer$", "-test.v")
	cmd.Env = append(os.Environ(), "LOOKOUT_BENCH_YIELD_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

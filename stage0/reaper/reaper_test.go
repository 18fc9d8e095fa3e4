package reaper

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestRunKeepsExitStatus runs commands through Run while other children
// exit and raise SIGCHLD: every Run must still see its own exit status.
func TestRunKeepsExitStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r Reaper
	r.Start(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := r.Run(exec.Command("/bin/sh", "-c", "exit 7"))
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 7 {
				t.Errorf("Run(exit 7) = %v, want exit status 7", err)
			}
		}()
		go func() {
			defer wg.Done()
			// A child nobody waits for, like an orphan re-parented to PID 1.
			p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
			if err != nil {
				t.Error(err)
				return
			}
			_ = p.Release()
		}()
	}
	wg.Wait()
}

// TestReapsZombies starts children without waiting for them and checks the
// reaper collects them (their /proc entries disappear).
func TestReapsZombies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r Reaper
	r.Start(ctx)
	var pids []int
	for i := 0; i < 5; i++ {
		p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p.Pid)
		_ = p.Release()
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("child %d never reaped", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Package reaper does PID 1's chore of collecting the exit status of
// orphaned processes (zombies) re-parented to it, while letting stage0's
// own commands (fsck, the shell) collect theirs.
package reaper

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper reaps children on SIGCHLD. wait4(-1) would also collect the
// children exec.Cmd is waiting for and make their Wait fail, so reaping
// pauses while a command started through Run is alive (a read lock each;
// the reaper takes the write lock). Zombies that appear meanwhile are
// collected when the last such command ends.
type Reaper struct {
	mu sync.RWMutex
}

// Start reaps until ctx ends.
func (r *Reaper) Start(ctx context.Context) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				r.mu.Lock()
				ReapAll()
				r.mu.Unlock()
			}
		}
	}()
}

// ReapAll collects every exited child without blocking and returns how
// many. Outside a Reaper it is for a PID 1 that runs no commands of its own
// (the shutdown side).
func ReapAll() int {
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}

// Run runs cmd to completion with reaping paused, and returns cmd.Run's
// error (an *exec.ExitError for a non-zero status).
func (r *Reaper) Run(cmd *exec.Cmd) error {
	return r.Do(cmd.Run)
}

// Do calls f, which starts and waits for children itself (os/exec), with
// reaping paused.
func (r *Reaper) Do(f func() error) error {
	r.mu.RLock()
	defer func() {
		r.mu.RUnlock()
		// Catch up with zombies whose SIGCHLD came while paused.
		if r.mu.TryLock() {
			ReapAll()
			r.mu.Unlock()
		}
	}()
	return f()
}

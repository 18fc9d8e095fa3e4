package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Command returns argv ready to run interactively on the terminal tty: in a
// new session (setsid) with tty as stdin, stdout, stderr and controlling
// terminal (TIOCSCTTY). The caller starts and waits for it (and must close
// the returned file afterwards).
func Command(ctx context.Context, tty string, argv, env []string) (*exec.Cmd, *os.File, error) {
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("console: empty command")
	}
	f, err := os.OpenFile(tty, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console: open %s: %w", tty, err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	cmd.Env = env
	cmd.Dir = "/"
	// Ctty is a descriptor number in the child: 0, its stdin.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	return cmd, f, nil
}

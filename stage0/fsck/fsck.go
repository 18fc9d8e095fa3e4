// Package fsck runs a filesystem checker on the root device before it is
// mounted and interprets its exit status as fsck(8) defines it.
package fsck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Outcome is what the boot should do after a check.
type Outcome int

// Outcomes of a check.
const (
	OK     Outcome = iota // clean, or errors corrected: mount and go on
	Reboot                // errors corrected, the system must reboot (fsck exit 2)
	Failed                // errors left uncorrected or the checker failed (exit ≥ 4)
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Reboot:
		return "reboot required"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Interpret maps an fsck exit status (a bit mask, fsck(8)) to an Outcome:
// 0 no errors, 1 errors corrected, 2 corrected and reboot needed, 4 errors
// left, 8 operational error, 16 usage error, 32 cancelled, 128 library error.
func Interpret(code int) Outcome {
	switch {
	case code&^1 == 0:
		return OK
	case code&^3 == 0:
		return Reboot
	}
	return Failed
}

// Args returns the checker's argument list for a boot-time check, following
// systemd-fsck: fsck.mode=force adds -f, skip means no check (nil);
// fsck.repair=preen (default) is -a, yes is -y, no is -n.
func Args(checker, device, mode, repair string) []string {
	if mode == "skip" {
		return nil
	}
	args := []string{checker}
	switch repair {
	case "yes":
		args = append(args, "-y")
	case "no":
		args = append(args, "-n")
	default:
		args = append(args, "-a")
	}
	if mode == "force" {
		args = append(args, "-f")
	}
	return append(args, device)
}

// Run runs the checker argv (from Args) with output to out and returns the
// outcome. An error means the checker could not be run or failed; its
// output is already in out, and the *exec.ExitError stays in the chain.
func Run(ctx context.Context, argv []string, out io.Writer) (Outcome, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return OK, nil
	case errors.As(err, &exit) && exit.Exited():
		o := Interpret(exit.ExitCode())
		if o == OK {
			return OK, nil
		}
		return o, fmt.Errorf("%s: exit status %d (%s): %w", strings.Join(argv, " "), exit.ExitCode(), o, err)
	}
	return Failed, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
}

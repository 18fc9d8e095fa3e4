package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func runBoot(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "boot", "[flags] IMAGE", `
Boot an initramfs image in qemu with its serial console on this terminal,
to try an image before installing it. The kernel is --kernel, else the one
vmlinuz-* file beside the image (where 'pkginitrd build' puts it). Disks
are attached as virtio drives; console=ttyS0 is added to the command line.
Leave qemu with Ctrl-A X.

Examples:
  pkginitrd build --generic --kernel-package linux-image-amd64 -o out/initrd.img
  pkginitrd boot --disk root.img --append 'root=LABEL=root rw' out/initrd.img
  pkginitrd boot --accel tcg --dry-run out/initrd.img`)
	var o bootOptions
	fs.StringVar(&o.kernel, "kernel", "", "kernel image (default: the vmlinuz-* beside IMAGE)")
	fs.Var(&o.disks, "disk", "raw disk image attached as a virtio drive (repeatable)")
	fs.StringVar(&o.append, "append", "", "kernel command line (console=ttyS0 is added)")
	fs.IntVar(&o.memMiB, "memory", 1024, "guest memory in MiB")
	fs.StringVar(&o.accel, "accel", "auto", "qemu accelerator: kvm, tcg, or auto (kvm with a fallback to tcg)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "qemu binary")
	dryRun := fs.Bool("dry-run", false, "print the qemu command instead of running it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "pkginitrd boot: want exactly one IMAGE (see --help)")
		return errUsage
	}
	o.initrd = fs.Arg(0)
	if _, err := os.Stat(o.initrd); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if o.kernel == "" {
		k, err := kernelBeside(o.initrd)
		if err != nil {
			return err
		}
		o.kernel = k
	}
	for _, p := range append([]string{o.kernel}, o.disks...) {
		if _, err := os.Stat(p); err != nil {
			return err
		}
	}
	argv, err := o.qemuArgs()
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintln(env.Stdout, shellQuote(argv))
		return nil
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", o.qemu, err)
	}
	return nil
}

// bootOptions is what `pkginitrd boot` runs qemu with.
type bootOptions struct {
	initrd, kernel, append string
	disks                  stringList
	memMiB                 int
	accel, qemu            string
}

// qemuArgs is the qemu command line: serial console on stdio, no display,
// no reboot (a guest reboot ends qemu).
func (o bootOptions) qemuArgs() ([]string, error) {
	argv := []string{o.qemu}
	switch o.accel {
	case "auto":
		argv = append(argv, "-accel", "kvm", "-accel", "tcg")
	case "kvm", "tcg":
		argv = append(argv, "-accel", o.accel)
	default:
		return nil, fmt.Errorf("--accel %q: want kvm, tcg or auto", o.accel)
	}
	if o.memMiB < 64 {
		return nil, fmt.Errorf("--memory %d: want at least 64 MiB", o.memMiB)
	}
	cmdline := strings.TrimSpace("console=ttyS0 " + o.append)
	argv = append(argv, "-m", fmt.Sprint(o.memMiB), "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", o.kernel, "-initrd", o.initrd, "-append", cmdline)
	for _, d := range o.disks {
		if strings.Contains(d, ",") {
			return nil, fmt.Errorf("--disk %s: qemu cannot take a path with a comma", d)
		}
		argv = append(argv, "-drive", "file="+d+",if=virtio,format=raw")
	}
	return argv, nil
}

// kernelBeside finds the one vmlinuz-* file in the image's directory.
func kernelBeside(initrd string) (string, error) {
	dir := filepath.Dir(initrd)
	found, err := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", errors.New("no vmlinuz-* beside " + initrd + ": give the kernel with --kernel")
	}
	return "", fmt.Errorf("several kernels beside %s (%s): choose one with --kernel", initrd, strings.Join(found, ", "))
}

// shellQuote prints argv so that a shell runs the same command.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

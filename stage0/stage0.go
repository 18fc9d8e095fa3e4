// Package stage0 is the /init of a pkginitrd image: the static Go program
// the kernel runs as PID 1 from the initramfs. Main
//
//   - mounts /proc, /sys, /dev (devtmpfs), /run (tmpfs) and /dev/pts;
//   - logs with timestamps to the console (warnings only with `quiet`) and
//     to /run/initramfs/boot.log, which survives into the real root;
//   - reads /proc/cmdline and the image config (bootconf, /etc/pkginitrd/initrd.toml);
//   - loads the modules of rd.modules-load= and force_load, then those the
//     present devices need (coldplug), and keeps loading for devices that
//     appear later (uevents), honouring module_blacklist=/rd.driver.blacklist=
//     and <module>.<param>= options;
//   - waits (rd.timeout=, default 30 s) for the root device named by root=
//     (or the image's default), probing signatures itself, and creates
//     /dev/disk/by-{uuid,label,partuuid,partlabel} links;
//   - with the luks and lvm features (--generic images have both), opens
//     the LUKS containers and activates the LVM volume groups the root is
//     on, with the packaged cryptsetup and lvm (passphrase typed at the
//     console, or rd.luks.key=); see package dm and storage.go;
//   - checks the root with the image's fsck for its type, mounts it on
//     /sysroot (rootfstype=, rootflags=, ro unless rw);
//   - when device-mapper or loop devices are in use (LUKS, LVM, live
//     images), copies itself to /run/initramfs/shutdown for the exitrd
//     protocol (see Shutdown and package shutdown);
//   - switches root like util-linux switch_root and execs init= or
//     /sbin/init with the arguments the kernel would have given it.
//
// On any failure it prints what it waited for, what it saw and what to try,
// and opens an emergency shell on the console; leaving the shell retries.
// rd.break opens a shell before switch_root (rd.break=pre-mount before the
// mount). Main never returns while it is PID 1.
//
// The boot is a list of steps (see plan), each logged before it runs; all
// side effects go through machine.Machine, which tests replace.
package stage0

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/reaper"
	"github.com/pkginitrd/pkginitrd/stage0/shutdown"
)

// shutdownDir is where the shutdown side lives after switch_root: systemd
// pivots into it at poweroff when shutdownDir/shutdown is executable.
const shutdownDir = "/run/initramfs"

// Shutdown is the /shutdown of the shutdown-to-initramfs protocol, the
// same binary run as PID 1 under that name by systemd-shutdown (see
// package shutdown): it unmounts the old root, removes the device-mapper
// and loop devices and ends the machine as args[1] says. It returns (with
// status 2) only when the process is not PID 1; as PID 1 it never returns.
func Shutdown(args []string) int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "shutdown: pkginitrd's shutdown runs only as PID 1, exec'd by systemd-shutdown from /run/initramfs")
		return 2
	}
	out := consoleOut()
	log := slog.New(bootlog.New(out, slog.LevelInfo, bootlog.Uptime))
	defer func() {
		if r := recover(); r != nil {
			// Still end the machine: the storage stack may be half torn
			// down, but hanging or exiting PID 1 is worse.
			fmt.Fprintf(out, "pkginitrd: shutdown: internal error: %v\n%s", r, debug.Stack())
			a, _ := shutdown.ParseArgs(args)
			unix.Sync()
			for _, cmd := range a.Commands() {
				_ = unix.Reboot(cmd) // returns only on failure: try the next command
			}
			hang()
		}
	}()
	ignoreSignals(log)
	s := shutdown.Shutdown{Sys: LinuxMachine(new(reaper.Reaper)), Log: log, OldRoot: "/oldroot", Self: 1}
	err := s.Run(context.Background(), args)
	fmt.Fprintf(out, "pkginitrd: %v\npkginitrd: cannot end the machine; switch it off\n", err)
	hang()
	return 1
}

// consoleOut is stderr, which systemd-shutdown points at the console, or
// /dev/console when stderr is not open.
func consoleOut() *os.File {
	var st unix.Stat_t
	if unix.Fstat(2, &st) == nil {
		return os.Stderr
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err == nil {
		return f
	}
	return os.Stderr
}

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
//   - switches root like util-linux switch_root and execs init= or
//     /sbin/init with the arguments the kernel would have given it.
//
// On any failure it prints what it waited for, what it saw and what to try,
// and opens an emergency shell on the console; leaving the shell retries.
// rd.break opens a shell before switch_root (rd.break=pre-mount before the
// mount). Main never returns while it is PID 1.
//
// The boot is a list of steps (see plan), each logged before it runs; all
// side effects go through System, which tests replace.
package stage0

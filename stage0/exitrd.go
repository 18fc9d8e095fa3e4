package stage0

import (
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/shutdown"
)

// keepShutdown copies stage0 to /run/initramfs/shutdown (see package
// shutdown) before the initramfs is freed, when the boot left
// device-mapper or loop devices under the root (LUKS, LVM, a live image,
// or ones made by hand in the shell): the real system cannot remove them
// while its root is mounted on them, so systemd-shutdown pivots back into
// /run/initramfs at poweroff and runs it. A plain root needs no help (the
// real system remounts it read-only), so it gets no copy: the copy stays
// in RAM (on /run) until poweroff. Only the program goes there, no key
// material.
func (b *boot) keepShutdown() {
	devs, err := b.sys.Devices()
	if err != nil {
		b.log.Warn("cannot list device-mapper and loop devices; keeping the shutdown program in case", "err", err)
	} else if len(devs) == 0 {
		b.log.Debug("no device-mapper or loop devices: no shutdown program needed in " + shutdownDir)
		return
	}
	if err := b.sys.InstallShutdown(shutdownDir); err != nil {
		b.log.Warn("cannot keep the shutdown program: the root will not be unmounted cleanly at poweroff", "err", err)
		return
	}
	var names []string
	for _, d := range devs {
		names = append(names, d.Kernel)
	}
	b.log.Info("kept the shutdown program for a clean poweroff", "path", shutdownDir+"/"+shutdown.Program, "devices", strings.Join(names, " "))
}
